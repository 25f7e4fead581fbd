/* fuzz-upgrade-head.c: the listener's own reader of data and standby upgrade heads
 * (plugins/websocket/zlt-ws-upgrade-head.c), checked against libsoup's request parser.
 *
 * Input: the bytes a client sends first on a connection. No sockets: the parser is a
 * pure function of the bytes, so this runs at full speed (fuzz-upgrade drives the
 * same code through the real listener).
 *
 * Checks, besides "no crash, no leak":
 * - a head the parser takes (OURS) is what libsoup reads too: soup_headers_parse_request()
 *   accepts it as a GET of /tunnel/v1/data over HTTP/1.1, with a Host, Connection
 *   naming "Upgrade" and Upgrade naming "zlt-data/2", no body, no X-Zlt-Probe, and the
 *   same value for every X-Zlt- header the listener passes on; it ends with its empty line
 *   and within the limit;
 * - the answer does not depend on how the bytes arrive: every shorter prefix of an OURS
 *   head is INCOMPLETE, and the head with anything after it is still the same head;
 * - INCOMPLETE only below the limit; with a smaller limit, never OURS past it. */
#include "config.h"

#include <string.h>

#include <libsoup/soup.h>

#include "zlt-fuzz.h"
#include "zlt-ws-listener.h"
#include "zlt-ws-upgrade-head.h"

#define MAX_CUTS 64

static ZltWsHeadKind
parse (const guint8 *data, gsize len, gsize max, ZltWsUpgradeHead *head)
{
  zlt_ws_upgrade_head_clear (head);
  return zlt_ws_upgrade_head_parse (data, len, max, head);
}

static void
check_same (SoupMessageHeaders *headers, const char *name, const char *ours)
{
  const char *theirs = soup_message_headers_get_one (headers, name);

  ZLT_FUZZ_CHECK (g_strcmp0 (theirs, ours) == 0, "%s: libsoup read \"%s\", we read \"%s\"", name,
                  theirs ? theirs : "(none)", ours ? ours : "(none)");
}

/* What libsoup makes of an OURS head. */
static void
check_with_libsoup (const guint8 *data, const ZltWsUpgradeHead *head)
{
  g_autoptr (SoupMessageHeaders) headers = soup_message_headers_new (SOUP_MESSAGE_HEADERS_REQUEST);
  g_autofree char *method = NULL;
  g_autofree char *path = NULL;
  SoupHTTPVersion version = SOUP_HTTP_1_0;
  guint status;

  status = soup_headers_parse_request ((const char *) data, (int) head->head_len, headers, &method,
                                       &path, &version);
  ZLT_FUZZ_CHECK (status == SOUP_STATUS_OK, "libsoup refuses a head we take: %u", status);
  ZLT_FUZZ_CHECK (g_strcmp0 (method, "GET") == 0, "method %s", method);
  ZLT_FUZZ_CHECK (g_strcmp0 (path, ZLT_WS_DATA_PATH) == 0, "path %s", path);
  ZLT_FUZZ_CHECK (version == SOUP_HTTP_1_1, "version %d", version);
  ZLT_FUZZ_CHECK (soup_message_headers_get_one (headers, "Host") != NULL, "no Host");
  ZLT_FUZZ_CHECK (soup_message_headers_header_contains (headers, "Upgrade", ZLT_WS_DATA_UPGRADE),
                  "Upgrade: %s", soup_message_headers_get_one (headers, "Upgrade"));
  ZLT_FUZZ_CHECK (soup_message_headers_header_contains (headers, "Connection", "Upgrade"),
                  "Connection: %s", soup_message_headers_get_one (headers, "Connection"));
  ZLT_FUZZ_CHECK (soup_message_headers_get_one (headers, "Transfer-Encoding") == NULL
                      && soup_message_headers_get_content_length (headers) == 0
                      && soup_message_headers_get_one (headers, "X-Zlt-Probe") == NULL,
                  "a body or a probe");
  check_same (headers, "X-Zlt-Tunnel", head->tunnel_id);
  check_same (headers, "X-Zlt-Connection", head->connection_id);
  check_same (headers, "X-Zlt-Standby", head->standby_id);
  check_same (headers, "X-Zlt-Mac", head->mac);
  check_same (headers, "X-Zlt-Service", head->service);
  ZLT_FUZZ_CHECK (head->tunnel_id != NULL && head->mac != NULL, "required headers");
  ZLT_FUZZ_CHECK (head->standby_id != NULL ? head->connection_id == NULL && head->service == NULL
                                           : head->connection_id != NULL,
                  "standby or data");
}

int
LLVMFuzzerInitialize (int *argc, char ***argv)
{
  zlt_fuzz_setup_logging ();
  return 0;
}

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
  g_auto (ZltWsUpgradeHead) head = { 0 };
  g_auto (ZltWsUpgradeHead) other = { 0 };
  ZltWsHeadKind kind, k;
  gsize small;

  if (size > 2 * ZLT_WS_MAX_REQUEST_HEAD)
    return 0;
  kind = parse (data, size, ZLT_WS_MAX_REQUEST_HEAD, &head);
  ZLT_FUZZ_CHECK (kind != ZLT_WS_HEAD_INCOMPLETE || size < ZLT_WS_MAX_REQUEST_HEAD,
                  "incomplete at %zu bytes", size);
  if (kind == ZLT_WS_HEAD_OURS)
    {
      ZLT_FUZZ_CHECK (head.head_len >= 4 && head.head_len <= size
                          && head.head_len <= ZLT_WS_MAX_REQUEST_HEAD
                          && memcmp (data + head.head_len - 4, "\r\n\r\n", 4) == 0,
                      "head of %zu bytes in %zu", head.head_len, size);
      check_with_libsoup (data, &head);
      /* split anywhere before its end: still waiting; cut right after it: the same */
      for (guint i = 0; i < MAX_CUTS; i++)
        {
          gsize cut = (gsize) ((guint64) head.head_len * i / MAX_CUTS);

          k = parse (data, cut, ZLT_WS_MAX_REQUEST_HEAD, &other);
          ZLT_FUZZ_CHECK (k == ZLT_WS_HEAD_INCOMPLETE, "a prefix of %zu bytes gave %d", cut, k);
        }
      k = parse (data, head.head_len - 1, ZLT_WS_MAX_REQUEST_HEAD, &other);
      ZLT_FUZZ_CHECK (k == ZLT_WS_HEAD_INCOMPLETE, "one byte short gave %d", k);
      k = parse (data, head.head_len, ZLT_WS_MAX_REQUEST_HEAD, &other);
      ZLT_FUZZ_CHECK (k == ZLT_WS_HEAD_OURS && other.head_len == head.head_len
                          && g_strcmp0 (other.mac, head.mac) == 0,
                      "the head alone gave %d", k);
    }
  /* a smaller limit: nothing past it is taken, and nothing waits at it */
  small = size / 2;
  k = parse (data, size, small, &other);
  ZLT_FUZZ_CHECK (k != ZLT_WS_HEAD_OURS || other.head_len <= small, "OURS past the limit");
  ZLT_FUZZ_CHECK (k != ZLT_WS_HEAD_INCOMPLETE || size < small, "incomplete past the limit");
  return 0;
}
