"""The renderer service: PDFs from named templates (document, invoice, report) and JSON data."""
