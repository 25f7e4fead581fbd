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

/**
 * zlt_hostname_patterns_normalize:
 * @patterns: (array zero-terminated=1) (inout): hostname patterns as a token store gave
 *   them
 *
 * Lower-cases each pattern in place (hostnames are compared ignoring case; grants keep
 * them in lowercase) and checks it with zlt_hostname_pattern_is_valid(), so that token
 * stores read hostnames= the same way.
 *
 * Returns: the index of the first entry that is not a hostname pattern, or -1 when all
 *   are (also for an empty list)
 */
int
zlt_hostname_patterns_normalize (char **patterns)
{
  g_return_val_if_fail (patterns != NULL, -1);

  for (int i = 0; patterns[i] != NULL; i++)
    {
      char *lower = g_ascii_strdown (patterns[i], -1);

      g_free (patterns[i]);
      patterns[i] = lower;
      if (!zlt_hostname_pattern_is_valid (lower))
        return i;
    }
  return -1;
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

/* The ClientHello's body (after its 4-byte handshake header): the server_name. */
static ZltSniffResult
parse_client_hello (Cursor hello, char **host)
{
  Cursor skip, exts;

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

/* The handshake message as it comes in over records: in place while it lies in one
 * record's fragment (the common case), else copied into @joined as it is reassembled. */
typedef struct
{
  const guint8 *p;
  gsize have;
  gboolean known; /* the 4-byte header has come: @need is the whole message */
  gsize need;
  guint8 *joined; /* owned, ZLT_SNIFF_TLS_HELLO_MAX bytes; NULL while in place */
} Message;

/* Checks what has come of the header; FALSE with @verdict once there is one. */
static gboolean
message_check_header (Message *m, ZltSniffResult *verdict)
{
  gsize hs_len;

  /* a client's first handshake message is its ClientHello */
  if (m->have >= 1 && m->p[0] != TLS_HANDSHAKE_CLIENT_HELLO)
    {
      *verdict = ZLT_SNIFF_BAD;
      return FALSE;
    }
  if (m->known || m->have < 4)
    return TRUE;
  hs_len = (gsize) m->p[1] << 16 | (gsize) m->p[2] << 8 | m->p[3];
  if (4 + hs_len > ZLT_SNIFF_TLS_HELLO_MAX)
    {
      *verdict = ZLT_SNIFF_TOO_LARGE;
      return FALSE;
    }
  m->known = TRUE;
  m->need = 4 + hs_len;
  return TRUE;
}

/* Adds a record's fragment (or what has come of it); FALSE with @verdict once there is
 * one: ZLT_SNIFF_FOUND means the message is whole. */
static gboolean
message_add (Message *m, const guint8 *fragment, gsize n, ZltSniffResult *verdict)
{
  if (n == 0)
    return TRUE;
  if (m->have == 0)
    {
      /* the first fragment: read where it is */
      m->p = fragment;
      m->have = n;
      if (!message_check_header (m, verdict))
        return FALSE;
      if (m->known)
        m->have = MIN (m->have, m->need); /* what follows the hello is not ours */
    }
  else
    {
      if (m->joined == NULL)
        {
          /* m->have is under 4, or under m->need <= ZLT_SNIFF_TLS_HELLO_MAX */
          m->joined = g_malloc (ZLT_SNIFF_TLS_HELLO_MAX);
          memcpy (m->joined, m->p, m->have);
          m->p = m->joined;
        }
      /* the header first (it may come a byte a record), then the rest */
      while (n > 0 && (!m->known || m->have < m->need))
        {
          gsize copy = MIN (n, (m->known ? m->need : 4) - m->have);

          memcpy (m->joined + m->have, fragment, copy);
          m->have += copy;
          fragment += copy;
          n -= copy;
          if (!message_check_header (m, verdict))
            return FALSE;
        }
    }
  if (m->known && m->have >= m->need)
    {
      *verdict = ZLT_SNIFF_FOUND;
      return FALSE;
    }
  return TRUE;
}

ZltSniffResult
zlt_sniff_tls_sni (const guint8 *data, gsize len, char **host)
{
  Message m = { NULL, 0, FALSE, 0, NULL };
  ZltSniffResult verdict = ZLT_SNIFF_NEED_MORE;
  gsize pos = 0;

  g_return_val_if_fail (host != NULL, ZLT_SNIFF_BAD);
  *host = NULL;

  /* Record after record, each header checked as far as it has come, their fragments
   * joined into the handshake message (RFC 8446 §5.1: a handshake message may span
   * records, and records may be cut anywhere by TCP): the ClientHello is read once it
   * is whole, however the client split it. */
  while (pos < len)
    {
      gsize record_len, n;

      if (data[pos] != TLS_CONTENT_HANDSHAKE)
        {
          verdict = ZLT_SNIFF_BAD; /* not TLS, or an alert or data before the hello's end */
          break;
        }
      if (len - pos >= 2 && data[pos + 1] != 3)
        {
          verdict = ZLT_SNIFF_BAD;
          break;
        }
      if (len - pos < 5)
        break;
      record_len = (gsize) data[pos + 3] << 8 | data[pos + 4];
      /* no empty handshake fragments (§5.1), none past 2^14 */
      if (record_len == 0 || record_len > 16384)
        {
          verdict = ZLT_SNIFF_BAD;
          break;
        }
      n = MIN (record_len, len - pos - 5);
      if (!message_add (&m, data + pos + 5, n, &verdict))
        break;
      if (n < record_len)
        break; /* the rest of this record is still to come */
      pos += 5 + record_len;
    }
  if (verdict == ZLT_SNIFF_FOUND)
    {
      Cursor hello = { m.p + 4, m.need - 4 };

      verdict = parse_client_hello (hello, host);
    }
  else if (verdict == ZLT_SNIFF_NEED_MORE && len >= ZLT_SNIFF_TLS_MAX)
    verdict = ZLT_SNIFF_TOO_LARGE;
  g_free (m.joined);
  return verdict;
}
