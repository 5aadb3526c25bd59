"""Entries as the communications staff write them: Markdown with YAML front matter.

entries    load content/ and validate every entry against the configuration
fields     read and cross-check an entry's front-matter fields
markup     Markdown to sanitised HTML, and any HTML to readable plain text
approval   record approvals in entry files; tell whether an entry is as approved
"""
