"""The service side of the runtime: what makes ``installation run`` a well-behaved kiosk
service under systemd, and harmless everywhere else.

- lifecycle.py: ``Service``, what the show loop sees (a master brightness, when to stop);
- signals.py: SIGHUP, SIGTERM and SIGINT from the first line of ``installation run`` to its exit;
- monitor.py: the service thread (READY, watchdog, STATUS, health record, opening hours);
- notify.py, journal.py: the edges to systemd (sd_notify, the journal);
- health.py: the health record and ``installation status``; dimmer.py: fades to black.
"""
