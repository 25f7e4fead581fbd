/* zlt-ws-upgrade-head.c: the request head of a data or standby connection, read
 * without libsoup.
 *
 * Every public connection joined to a standby data connection makes the agent open a
 * replacement, whose upgrade request libsoup parsed into a SoupServerMessage (headers,
 * URI, signals, a response to serialize): about a fifth of the server's CPU per public
 * connection. The request our agents send is fixed (zlt-ws-connect.c), so we read that
 * form ourselves, strictly, and leave everything else to libsoup: a head is ours only
 * when libsoup would have parsed it to the same values and the listener's data path
 * would have taken it to the server's verdict. Anything odd or unexpected (bare LF line
 * ends, folded or repeated headers, bytes outside printable ASCII, a body, a probe, a
 * missing header) is OTHER, and libsoup gives the answer it always gave. */
#define _GNU_SOURCE /* memmem */
#include "config.h"

#include <string.h>

#include "zlt-ws-listener.h"
#include "zlt-ws-upgrade-head.h"

#define REQUEST_LINE "GET " ZLT_WS_DATA_PATH " HTTP/1.1\r\n"
#define REQUEST_LINE_LEN (sizeof REQUEST_LINE - 1)

typedef enum
{
  H_HOST,
  H_CONNECTION,
  H_UPGRADE,
  H_TUNNEL,
  H_CONNECTION_ID,
  H_STANDBY,
  H_MAC,
  H_SERVICE,
  /* present at all: libsoup's path decides */
  H_PROBE,
  H_CONTENT_LENGTH,
  H_TRANSFER_ENCODING,
  H_EXPECT,
  N_HEADERS
} Header;

static const char *const header_names[N_HEADERS] = {
  "Host",           "Connection",        "Upgrade",
  "X-Zlt-Tunnel",   "X-Zlt-Connection",  "X-Zlt-Standby",
  "X-Zlt-Mac",      "X-Zlt-Service",     "X-Zlt-Probe",
  "Content-Length", "Transfer-Encoding", "Expect",
};

typedef struct
{
  const char *value;
  gsize len;
} Field;

static gboolean
is_tchar (guint8 c)
{
  return g_ascii_isalnum (c) || (c != 0 && strchr ("!#$%&'*+-.^_`|~", c) != NULL);
}

static gboolean
is_space (guint8 c)
{
  return c == ' ' || c == '\t';
}

/* Whether the comma-separated list @value names @token (case-insensitive), as
 * soup_header_contains() finds it in a list without quoted strings. */
static gboolean
list_contains (const char *value, gsize len, const char *token)
{
  gsize token_len = strlen (token);
  gsize i = 0;

  while (i < len)
    {
      gsize start, end;

      while (i < len && (is_space (value[i]) || value[i] == ','))
        i++;
      start = i;
      while (i < len && value[i] != ',')
        i++;
      end = i;
      while (end > start && is_space (value[end - 1]))
        end--;
      if (end - start == token_len && g_ascii_strncasecmp (value + start, token, token_len) == 0)
        return TRUE;
    }
  return FALSE;
}

/* a Host value libsoup takes as it is: a name, an IPv4 address or [IPv6], a port */
static gboolean
is_plain_host (const char *value, gsize len)
{
  if (len == 0)
    return FALSE;
  for (gsize i = 0; i < len; i++)
    if (!g_ascii_isalnum (value[i]) && strchr (".-:[]", value[i]) == NULL)
      return FALSE;
  return TRUE;
}

/* One "Name: value" line (without its CRLF) into @fields; FALSE for anything that is
 * not plainly such a line, or a header of ours given twice. */
static gboolean
parse_line (const char *line, gsize len, Field *fields)
{
  const char *colon = memchr (line, ':', len);
  gsize name_len, start, end;

  if (colon == NULL || colon == line)
    return FALSE;
  name_len = (gsize) (colon - line);
  for (gsize i = 0; i < name_len; i++)
    if (!is_tchar (line[i]))
      return FALSE;
  start = name_len + 1;
  end = len;
  for (gsize i = start; i < end; i++)
    if (!is_space (line[i]) && ((guint8) line[i] < 0x20 || (guint8) line[i] > 0x7e))
      return FALSE;
  while (start < end && is_space (line[start]))
    start++;
  while (end > start && is_space (line[end - 1]))
    end--;
  for (guint h = 0; h < N_HEADERS; h++)
    {
      if (strlen (header_names[h]) != name_len
          || g_ascii_strncasecmp (line, header_names[h], name_len) != 0)
        continue;
      if (fields[h].value != NULL)
        return FALSE;
      fields[h].value = line + start;
      fields[h].len = end - start;
      return TRUE;
    }
  return TRUE; /* a header nobody reads here (User-Agent, ...) */
}

static char *
field_dup (const Field *field)
{
  return field->value != NULL ? g_strndup (field->value, field->len) : NULL;
}

ZltWsHeadKind
zlt_ws_upgrade_head_parse (const guint8 *data, gsize len, gsize max_head, ZltWsUpgradeHead *head)
{
  const char *text = (const char *) data;
  Field fields[N_HEADERS] = { { 0 } };
  const char *end, *line;
  gsize head_len;

  g_return_val_if_fail (data != NULL || len == 0, ZLT_WS_HEAD_OTHER);
  g_return_val_if_fail (head != NULL, ZLT_WS_HEAD_OTHER);

  if (memcmp (text, REQUEST_LINE, MIN (len, REQUEST_LINE_LEN)) != 0)
    return ZLT_WS_HEAD_OTHER;
  /* LF only after CR, no NUL: the only line ends we read; libsoup reads others */
  for (gsize i = 0; i < len; i++)
    if (data[i] == 0 || (data[i] == '\n' && (i == 0 || data[i - 1] != '\r')))
      return ZLT_WS_HEAD_OTHER;
  end = len >= REQUEST_LINE_LEN
            ? memmem (text + REQUEST_LINE_LEN - 2, len - REQUEST_LINE_LEN + 2, "\r\n\r\n", 4)
            : NULL;
  if (end == NULL)
    return len >= max_head ? ZLT_WS_HEAD_OTHER : ZLT_WS_HEAD_INCOMPLETE;
  head_len = (gsize) (end - text) + 4;
  if (head_len > max_head)
    return ZLT_WS_HEAD_OTHER;

  /* header lines: from after the request line up to the empty line */
  line = text + REQUEST_LINE_LEN;
  while (line < end + 2)
    {
      const char *eol = memmem (line, (gsize) (end + 2 - line), "\r\n", 2);

      /* a folded line continues the previous one: libsoup's to read */
      if (is_space (*line) || !parse_line (line, (gsize) (eol - line), fields))
        return ZLT_WS_HEAD_OTHER;
      line = eol + 2;
    }

  if (fields[H_PROBE].value != NULL || fields[H_CONTENT_LENGTH].value != NULL
      || fields[H_TRANSFER_ENCODING].value != NULL || fields[H_EXPECT].value != NULL)
    return ZLT_WS_HEAD_OTHER;
  if (fields[H_HOST].value == NULL || !is_plain_host (fields[H_HOST].value, fields[H_HOST].len))
    return ZLT_WS_HEAD_OTHER;
  if (fields[H_UPGRADE].value == NULL || fields[H_CONNECTION].value == NULL
      || memchr (fields[H_UPGRADE].value, '"', fields[H_UPGRADE].len) != NULL
      || memchr (fields[H_CONNECTION].value, '"', fields[H_CONNECTION].len) != NULL
      || !list_contains (fields[H_UPGRADE].value, fields[H_UPGRADE].len, ZLT_WS_DATA_UPGRADE)
      || !list_contains (fields[H_CONNECTION].value, fields[H_CONNECTION].len, "Upgrade"))
    return ZLT_WS_HEAD_OTHER;
  if (fields[H_TUNNEL].value == NULL || fields[H_MAC].value == NULL)
    return ZLT_WS_HEAD_OTHER;
  if (fields[H_STANDBY].value != NULL)
    {
      if (fields[H_CONNECTION_ID].value != NULL || fields[H_SERVICE].value != NULL)
        return ZLT_WS_HEAD_OTHER;
    }
  else if (fields[H_CONNECTION_ID].value == NULL)
    return ZLT_WS_HEAD_OTHER;

  head->head_len = head_len;
  head->tunnel_id = field_dup (&fields[H_TUNNEL]);
  head->connection_id = field_dup (&fields[H_CONNECTION_ID]);
  head->standby_id = field_dup (&fields[H_STANDBY]);
  head->mac = field_dup (&fields[H_MAC]);
  head->service = field_dup (&fields[H_SERVICE]);
  return ZLT_WS_HEAD_OURS;
}

void
zlt_ws_upgrade_head_clear (ZltWsUpgradeHead *head)
{
  g_clear_pointer (&head->tunnel_id, g_free);
  g_clear_pointer (&head->connection_id, g_free);
  g_clear_pointer (&head->standby_id, g_free);
  g_clear_pointer (&head->mac, g_free);
  g_clear_pointer (&head->service, g_free);
  head->head_len = 0;
}
