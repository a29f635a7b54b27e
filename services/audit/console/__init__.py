"""The audit console: a web page over the read model and the broker. routes.py serves it;
job_pages.py and ops_pages.py draw the pages in layout.py's frame; outputs.py reads the blob
store."""
