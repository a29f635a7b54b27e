"""The mail sink: a local SMTP server that keeps every mail in a Maildir and shows it over
HTTP (the role Mailpit plays), with a chaos hook for testing SMTP failures."""
