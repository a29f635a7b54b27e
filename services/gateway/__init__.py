"""The HTTP gateway: accepts jobs with publisher confirms, reports status and results."""
