"""Sending: the per-issue pipeline, the transports, envelope and DKIM signing, schedules."""
