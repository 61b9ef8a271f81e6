"""Sync: the PCs of a room playing one show in frame lockstep (``[sync]``, docs/sync.md).

Show time is the chrony-disciplined wall clock minus an epoch every PC shares (``clock``), so
frame k is on every screen at the same moment without a message per frame. What remains to
share is the conductor's state: one PC leads and multicasts its whole state (``wire``,
``multicast``) as a heartbeat and at once after each change, which takes effect a little in
the future so that every PC has it in time. Who leads is decided by ``election`` from the
heartbeats alone; ``peer`` runs it all beside the show.
"""
