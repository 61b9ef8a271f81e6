"""The score: what the show plays and when, as pure functions of show, scene, seed and time.

``show`` reads show files, ``scenes`` their scenes and the one pace rule, ``hours`` opening
hours, ``osc_settings`` where OSC listens; ``trajectory`` walks the latent space (with
``easing`` and ``breathing``), ``cue`` and ``ramp`` turn scenes and live changes into a walk
over show time, and ``conductor`` is the one state machine that OSC, reloads and the clock
post to. A frame it asks for is a ``plan``: layers of latents that the engine paints.
"""
