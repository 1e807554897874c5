"""Read models fed from the notification log with tracking records (issue 4)."""
