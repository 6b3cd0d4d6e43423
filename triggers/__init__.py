"""What notices new files: the poller (reconciler) and, later, the webhook."""
