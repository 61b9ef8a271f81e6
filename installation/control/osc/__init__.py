"""OSC control: lighting desks, sound systems and show controllers steer the show over UDP.

``server`` owns the socket and its thread, ``addresses`` is the address space (one plain
handler per address, posting to the conductor), ``patterns`` matches address patterns
against it in linear time, ``arguments`` checks what a message carries. Where the server
listens and whom it hears is the show's ``[osc]`` table (``installation.score.osc_settings``).
The address space is documented in ``docs/osc.md``.
"""
