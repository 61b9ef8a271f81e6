"""Control: everything that steers a running show from outside posts to the conductor.

``osc/`` is the OSC socket and its address space, ``reload`` re-reads the show file on
SIGHUP or ``/show/reload``, and ``steering`` starts and stops both around the show loop.
None of them touches the engine or the display.
"""
