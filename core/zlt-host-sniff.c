/* zlt-host-sniff.c: the hostname a public connection asks for (Host header, TLS SNI)
 *
 * Both parsers see untrusted bytes: every length is checked against what is left
 * before it is used, and neither reads past @len. They are called again with more
 * bytes until they give a verdict; the caller bounds the bytes (ZLT_SNIFF_*_MAX).
 */
#include "config.h"

#include <string.h>

#include "zlt-host-sniff.h"

char *
zlt_hostname_normalize (const char *name, gssize len)
{
  gsize n = len < 0 ? strlen (name) : (gsize) len;
  gsize label = 0;
  char *out;

  if (n > 0 && name[n - 1] == '.')
    n--;
  if (n == 0 || n > ZLT_HOSTNAME_MAX)
    return NULL;
  for (gsize i = 0; i < n; i++)
    {
      char c = name[i];

      if (c == '.')
        {
          if (label == 0)
            return NULL;
          label = 0;
          continue;
        }
      if (!g_ascii_isalnum (c) && c != '-' && c != '_')
        return NULL;
      if (++label > 63)
        return NULL;
    }
  if (label == 0)
    return NULL;
  out = g_ascii_strdown (name, (gssize) n);
  return out;
}

gboolean
zlt_hostname_pattern_is_valid (const char *pattern)
{
  g_autofree char *norm = NULL;

  if (pattern == NULL)
    return FALSE;
  if (g_str_has_prefix (pattern, "*."))
    pattern += 2;
  norm = zlt_hostname_normalize (pattern, -1);
  return norm != NULL && g_str_equal (norm, pattern);
}

gboolean
zlt_hostname_pattern_matches (const char *pattern, const char *host)
{
  gsize plen, hlen;

  if (pattern == NULL || host == NULL)
    return FALSE;
  if (!g_str_has_prefix (pattern, "*."))
    return g_ascii_strcasecmp (pattern, host) == 0;
  /* "*.apps.example.test": "x.apps.example.test", "a.b.apps.example.test" */
  pattern += 1; /* ".apps.example.test" */
  plen = strlen (pattern);
  hlen = strlen (host);
  return hlen > plen && g_ascii_strcasecmp (host + hlen - plen, pattern) == 0;
}

gboolean
zlt_hostname_patterns_match (const char *const *patterns, const char *host)
{
  for (guint i = 0; patterns != NULL && patterns[i] != NULL; i++)
    if (zlt_hostname_pattern_matches (patterns[i], host))
      return TRUE;
  return FALSE;
}

/* ---- HTTP ---- */

/* The end of the head (after its empty line), or 0 when it is not complete. Bare LF
 * line ends are taken as well (RFC 9112 §2.2). */
static gsize
http_head_end (const guint8 *data, gsize len)
{
  for (gsize i = 0; i < len; i++)
    {
      if (data[i] != '\n')
        continue;
      if (i + 1 < len && data[i + 1] == '\n')
        return i + 2;
      if (i + 2 < len && data[i + 1] == '\r' && data[i + 2] == '\n')
        return i + 3;
    }
  return 0;
}

ZltSniffResult
zlt_sniff_http_host (const guint8 *data, gsize len, char **host)
{
  gsize end, pos;
  const char *found = NULL;
  gsize found_len = 0;

  g_return_val_if_fail (host != NULL, ZLT_SNIFF_BAD);
  *host = NULL;

  /* a request line starts with a token: a client speaking something else (TLS on the
   * HTTP port) is told apart at once */
  for (gsize i = 0; i < len && i < 16; i++)
    {
      if (data[i] == ' ' && i > 0)
        break;
      if (!g_ascii_isupper (data[i]) && data[i] != '-')
        return ZLT_SNIFF_BAD;
    }
  end = http_head_end (data, MIN (len, (gsize) ZLT_SNIFF_HTTP_MAX));
  if (end == 0)
    return len >= ZLT_SNIFF_HTTP_MAX ? ZLT_SNIFF_TOO_LARGE : ZLT_SNIFF_NEED_MORE;

  /* skip the request line */
  pos = 0;
  while (pos < end && data[pos] != '\n')
    pos++;
  pos++;
  while (pos < end)
    {
      gsize line = pos, line_end = pos;
      const char *value;
      gsize vlen;

      while (line_end < end && data[line_end] != '\n')
        line_end++;
      pos = line_end + 1;
      if (line_end > line && data[line_end - 1] == '\r')
        line_end--;
      if (line_end == line)
        break; /* the empty line */
      if (line_end - line < 5 || g_ascii_strncasecmp ((const char *) data + line, "host:", 5) != 0)
        continue;
      value = (const char *) data + line + 5;
      vlen = line_end - line - 5;
      while (vlen > 0 && (*value == ' ' || *value == '\t'))
        value++, vlen--;
      while (vlen > 0 && (value[vlen - 1] == ' ' || value[vlen - 1] == '\t'))
        vlen--;
      if (found != NULL)
        return ZLT_SNIFF_NO_HOST; /* two Host headers: RFC 9112 §3.2 says 400 */
      found = value;
      found_len = vlen;
    }
  if (found == NULL)
    return ZLT_SNIFF_NO_HOST;
  if (found_len > 0 && found[0] == '[')
    return ZLT_SNIFF_NO_HOST; /* an IPv6 literal routes to no hostname */
  for (gsize i = 0; i < found_len; i++)
    if (found[i] == ':')
      {
        /* the port must be digits */
        for (gsize j = i + 1; j < found_len; j++)
          if (!g_ascii_isdigit (found[j]))
            return ZLT_SNIFF_NO_HOST;
        found_len = i;
        break;
      }
  *host = zlt_hostname_normalize (found, (gssize) found_len);
  return *host != NULL ? ZLT_SNIFF_FOUND : ZLT_SNIFF_NO_HOST;
}

/* ---- TLS ---- */

typedef struct
{
  const guint8 *p;
  gsize left;
} Cursor;

static gboolean
take (Cursor *c, gsize n, const guint8 **out)
{
  if (c->left < n)
    return FALSE;
  if (out != NULL)
    *out = c->p;
  c->p += n;
  c->left -= n;
  return TRUE;
}

static gboolean
take_u8 (Cursor *c, guint *v)
{
  const guint8 *p;

  if (!take (c, 1, &p))
    return FALSE;
  *v = p[0];
  return TRUE;
}

static gboolean
take_u16 (Cursor *c, guint *v)
{
  const guint8 *p;

  if (!take (c, 2, &p))
    return FALSE;
  *v = (guint) p[0] << 8 | p[1];
  return TRUE;
}

/* A vector with a length prefix of @size bytes (1 or 2) as its own cursor. */
static gboolean
take_vector (Cursor *c, guint size, Cursor *inner)
{
  guint n;

  if (!(size == 1 ? take_u8 (c, &n) : take_u16 (c, &n)))
    return FALSE;
  inner->p = c->p;
  inner->left = n;
  return take (c, n, NULL);
}

#define TLS_CONTENT_HANDSHAKE 22
#define TLS_HANDSHAKE_CLIENT_HELLO 1
#define TLS_EXT_SERVER_NAME 0
#define TLS_NAME_TYPE_HOST_NAME 0

static ZltSniffResult
parse_server_name (Cursor ext, char **host)
{
  Cursor list;

  if (!take_vector (&ext, 2, &list) || ext.left != 0)
    return ZLT_SNIFF_BAD;
  while (list.left > 0)
    {
      guint type;
      Cursor name;

      if (!take_u8 (&list, &type) || !take_vector (&list, 2, &name))
        return ZLT_SNIFF_BAD;
      if (type != TLS_NAME_TYPE_HOST_NAME)
        continue;
      /* RFC 6066 §3: no trailing dot, no NUL; normalize refuses what is not a name */
      *host = zlt_hostname_normalize ((const char *) name.p, (gssize) name.left);
      return *host != NULL ? ZLT_SNIFF_FOUND : ZLT_SNIFF_NO_HOST;
    }
  return ZLT_SNIFF_NO_HOST;
}

ZltSniffResult
zlt_sniff_tls_sni (const guint8 *data, gsize len, char **host)
{
  Cursor c = { data, len };
  Cursor hello, skip, exts;
  const guint8 *hs;
  guint type, major, minor, record_len, hs_type, hs_len;

  g_return_val_if_fail (host != NULL, ZLT_SNIFF_BAD);
  *host = NULL;

  /* the record header, checked as far as it has come */
  if (len >= 1 && data[0] != TLS_CONTENT_HANDSHAKE)
    return ZLT_SNIFF_BAD;
  if (len >= 2 && data[1] != 3)
    return ZLT_SNIFF_BAD;
  if (len < 5)
    return ZLT_SNIFF_NEED_MORE;
  take_u8 (&c, &type);
  take_u8 (&c, &major);
  take_u8 (&c, &minor);
  take_u16 (&c, &record_len);
  if (record_len == 0 || record_len > 16384)
    return ZLT_SNIFF_BAD;
  if (c.left < record_len)
    return ZLT_SNIFF_NEED_MORE;
  c.left = record_len;

  /* the handshake message: a ClientHello that fits in this record (a ClientHello split
   * over records is not followed: it has no name for us) */
  if (!take_u8 (&c, &hs_type) || hs_type != TLS_HANDSHAKE_CLIENT_HELLO)
    return ZLT_SNIFF_BAD;
  if (!take (&c, 3, &hs))
    return ZLT_SNIFF_BAD;
  hs_len = (guint) hs[0] << 16 | (guint) hs[1] << 8 | hs[2];
  if (hs_len > c.left)
    return ZLT_SNIFF_NO_HOST;
  hello.p = c.p;
  hello.left = hs_len;

  if (!take (&hello, 2 + 32, NULL)        /* legacy_version, random */
      || !take_vector (&hello, 1, &skip)  /* legacy_session_id */
      || !take_vector (&hello, 2, &skip)  /* cipher_suites */
      || !take_vector (&hello, 1, &skip)) /* legacy_compression_methods */
    return ZLT_SNIFF_BAD;
  if (hello.left == 0)
    return ZLT_SNIFF_NO_HOST; /* no extensions at all */
  if (!take_vector (&hello, 2, &exts))
    return ZLT_SNIFF_BAD;
  while (exts.left > 0)
    {
      guint ext_type;
      Cursor ext;

      if (!take_u16 (&exts, &ext_type) || !take_vector (&exts, 2, &ext))
        return ZLT_SNIFF_BAD;
      if (ext_type == TLS_EXT_SERVER_NAME)
        return parse_server_name (ext, host);
    }
  return ZLT_SNIFF_NO_HOST;
}
