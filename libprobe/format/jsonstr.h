/* Internal: JSON string literals from any bytes, for the formatters that emit JSON. */
#ifndef PROBE_FORMAT_JSONSTR_H
#define PROBE_FORMAT_JSONSTR_H

#include <probe/report.h>

/* Write @s (any bytes) as a JSON string literal, always valid UTF-8; NULL is null. */
int jsonstr_write(probe_writer *w, const char *s);

/* The same, with '<', '>' and '&' escaped too, so that no "</script>" or "<!--"
 * appears: for JSON inside an HTML <script> element ("html" formatter). */
int jsonstr_write_html(probe_writer *w, const char *s);

#endif
