"""The mailer: sends each `mail` job once over SMTP, with attachments from the blob store."""
