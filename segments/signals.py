"""Signals the segments app sends when membership changes; other apps listen."""

from django.dispatch import Signal

# Sent after commit when a contact enters or leaves a segment, with sender=Segment and the
# keyword arguments contact, segment, at (an aware datetime) and batch: a dict shared by
# the signals of one announcement (one contact's changes of one commit, or one segment's
# of a sweep), where a receiver may keep what it looked up for the next ones.
contact_entered_segment = Signal()
contact_left_segment = Signal()

# Sent when a sweep of a workspace has compared and stamped its segments, before it is
# marked finished, with sender=MembershipSweep and the keyword arguments workspace_id and
# at (the sweep's start: the moment its stamps say the memberships hold for).
workspace_swept = Signal()
