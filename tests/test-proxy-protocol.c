/* test-proxy-protocol.c: the public client's address reaches the service
 * (PROTOCOL-v2.md §9): the PROXY protocol header encoder byte for byte, the ADDRESSES tag
 * and the binding of format 2, the config key, and end to end a real consumer of PROXY
 * headers, HAProxy, behind a real agent and server on loopback, for IPv4 and IPv6 public
 * clients, over standby connections and over Connect */
#include "config.h"

#include <signal.h>
#include <string.h>
#include <sys/prctl.h>

#include "zlt-binding.h"
#include "zlt-proxy-header.h"
#include "zlt-server-private.h"
#include "zlt-test-util.h"

#define PORT_RANGE "31900-31949"

/* 203.0.113.7:51234 → 198.51.100.1:8080 */
static ZltAddresses
vector_ipv4 (void)
{
  ZltAddresses a = { 0 };

  a.family = ZLT_ADDRESS_FAMILY_IPV4;
  memcpy (a.source, "\xcb\x00\x71\x07", 4);
  memcpy (a.destination, "\xc6\x33\x64\x01", 4);
  a.source_port = 51234;
  a.destination_port = 8080;
  return a;
}

/* [2001:db8::1]:51234 → [2001:db8::2]:443 */
static ZltAddresses
vector_ipv6 (void)
{
  ZltAddresses a = { 0 };

  a.family = ZLT_ADDRESS_FAMILY_IPV6;
  memcpy (a.source, "\x20\x01\x0d\xb8\0\0\0\0\0\0\0\0\0\0\0\x01", 16);
  memcpy (a.destination, "\x20\x01\x0d\xb8\0\0\0\0\0\0\0\0\0\0\0\x02", 16);
  a.source_port = 51234;
  a.destination_port = 443;
  return a;
}

static void
assert_bytes (GBytes *bytes, const char *hex)
{
  g_autoptr (GBytes) expected = zlt_test_bytes_from_hex (hex);

  g_assert_nonnull (bytes);
  g_assert_cmpmem (g_bytes_get_data (bytes, NULL), g_bytes_get_size (bytes),
                   g_bytes_get_data (expected, NULL), g_bytes_get_size (expected));
}

static void
assert_text (GBytes *bytes, const char *text)
{
  g_assert_nonnull (bytes);
  g_assert_cmpmem (g_bytes_get_data (bytes, NULL), g_bytes_get_size (bytes), text, strlen (text));
}

/* ---- the encoder ---- */

static void
test_header_v1 (void)
{
  ZltAddresses v4 = vector_ipv4 (), v6 = vector_ipv6 (), bad = vector_ipv4 ();
  g_autoptr (GBytes) a = zlt_proxy_header_new (ZLT_PROXY_PROTOCOL_V1, ZLT_PROTOCOL_TCP, &v4);
  g_autoptr (GBytes) b = zlt_proxy_header_new (ZLT_PROXY_PROTOCOL_V1, ZLT_PROTOCOL_TCP, &v6);
  g_autoptr (GBytes) c = zlt_proxy_header_new (ZLT_PROXY_PROTOCOL_V1, ZLT_PROTOCOL_TCP, NULL);
  g_autoptr (GBytes) d = zlt_proxy_header_new (ZLT_PROXY_PROTOCOL_V1, ZLT_PROTOCOL_UDP, &v4);
  g_autoptr (GBytes) e = NULL;
  g_autoptr (GBytes) f = NULL;

  assert_text (a, "PROXY TCP4 203.0.113.7 198.51.100.1 51234 8080\r\n");
  assert_text (b, "PROXY TCP6 2001:db8::1 2001:db8::2 51234 443\r\n");
  assert_text (c, "PROXY UNKNOWN\r\n");
  /* v1 has no UDP form */
  assert_text (d, "PROXY UNKNOWN\r\n");
  /* an address that is not what the wire allows is no address */
  bad.source[15] = 1;
  e = zlt_proxy_header_new (ZLT_PROXY_PROTOCOL_V1, ZLT_PROTOCOL_TCP, &bad);
  assert_text (e, "PROXY UNKNOWN\r\n");
  bad = vector_ipv4 ();
  bad.family = 5;
  f = zlt_proxy_header_new (ZLT_PROXY_PROTOCOL_V1, ZLT_PROTOCOL_TCP, &bad);
  assert_text (f, "PROXY UNKNOWN\r\n");
  g_assert_null (zlt_proxy_header_new (ZLT_PROXY_PROTOCOL_NONE, ZLT_PROTOCOL_TCP, &v4));
}

static void
test_header_v2 (void)
{
  ZltAddresses v4 = vector_ipv4 (), v6 = vector_ipv6 ();
  g_autoptr (GBytes) a = zlt_proxy_header_new (ZLT_PROXY_PROTOCOL_V2, ZLT_PROTOCOL_TCP, &v4);
  g_autoptr (GBytes) b = zlt_proxy_header_new (ZLT_PROXY_PROTOCOL_V2, ZLT_PROTOCOL_TCP, &v6);
  g_autoptr (GBytes) c = zlt_proxy_header_new (ZLT_PROXY_PROTOCOL_V2, ZLT_PROTOCOL_TCP, NULL);
  g_autoptr (GBytes) d = zlt_proxy_header_new (ZLT_PROXY_PROTOCOL_V2, ZLT_PROTOCOL_UDP, &v4);
  g_autoptr (GBytes) e = zlt_proxy_header_new (ZLT_PROXY_PROTOCOL_V2, ZLT_PROTOCOL_UDP, &v6);

  /* signature, 0x21 (v2, PROXY), 0x11 (TCP over IPv4), 12 bytes, addresses, ports */
  assert_bytes (a, "0D 0A 0D 0A 00 0D 0A 51 55 49 54 0A 21 11 00 0C"
                   "CB 00 71 07 C6 33 64 01 C8 22 1F 90");
  assert_bytes (b, "0D 0A 0D 0A 00 0D 0A 51 55 49 54 0A 21 21 00 24"
                   "20 01 0D B8 00 00 00 00 00 00 00 00 00 00 00 01"
                   "20 01 0D B8 00 00 00 00 00 00 00 00 00 00 00 02 C8 22 01 BB");
  /* no address: LOCAL (0x20), UNSPEC, nothing after */
  assert_bytes (c, "0D 0A 0D 0A 00 0D 0A 51 55 49 54 0A 20 00 00 00");
  assert_bytes (d, "0D 0A 0D 0A 00 0D 0A 51 55 49 54 0A 21 12 00 0C"
                   "CB 00 71 07 C6 33 64 01 C8 22 1F 90");
  g_assert_cmpuint (g_bytes_get_size (e), ==, 16 + 36);
  g_assert_cmpuint (((const guint8 *) g_bytes_get_data (e, NULL))[13], ==, 0x22);
}

/* the two ends of a socket, IPv4-mapped addresses as IPv4 */
static void
test_addresses_from_sockets (void)
{
  g_autoptr (GSocketAddress) src4 = g_inet_socket_address_new_from_string ("203.0.113.7", 51234);
  g_autoptr (GSocketAddress) dst4 = g_inet_socket_address_new_from_string ("198.51.100.1", 8080);
  g_autoptr (GSocketAddress) src_mapped
      = g_inet_socket_address_new_from_string ("::ffff:203.0.113.7", 51234);
  g_autoptr (GSocketAddress) dst_mapped
      = g_inet_socket_address_new_from_string ("::ffff:198.51.100.1", 8080);
  g_autoptr (GSocketAddress) src6 = g_inet_socket_address_new_from_string ("2001:db8::1", 51234);
  g_autoptr (GSocketAddress) dst6 = g_inet_socket_address_new_from_string ("2001:db8::2", 443);
  ZltAddresses v4 = vector_ipv4 (), v6 = vector_ipv6 (), got;
  g_autofree char *text4 = NULL;
  g_autofree char *text6 = NULL;

  g_assert_true (zlt_addresses_from_socket_addresses (src4, dst4, &got));
  g_assert_true (zlt_addresses_equal (&got, &v4));
  g_assert_true (zlt_addresses_from_socket_addresses (src_mapped, dst_mapped, &got));
  g_assert_true (zlt_addresses_equal (&got, &v4));
  g_assert_true (zlt_addresses_from_socket_addresses (src6, dst6, &got));
  g_assert_true (zlt_addresses_equal (&got, &v6));
  g_assert_false (zlt_addresses_equal (&v4, &v6));
  got.destination_port++;
  g_assert_false (zlt_addresses_equal (&got, &v6));
  /* mixed families cannot be one connection */
  g_assert_false (zlt_addresses_from_socket_addresses (src4, dst6, &got));
  g_assert_false (zlt_addresses_from_socket_addresses (src4, NULL, &got));
  g_assert_false (zlt_addresses_from_stream (NULL, &got));

  text4 = zlt_addresses_to_string (&v4);
  text6 = zlt_addresses_to_string (&v6);
  g_assert_cmpstr (text4, ==, "203.0.113.7:51234 > 198.51.100.1:8080");
  g_assert_cmpstr (text6, ==, "[2001:db8::1]:51234 > [2001:db8::2]:443");
}

/* ---- the ADDRESSES tag and the binding of format 2 ---- */

#define SERVICE_ID "123e4567-e89b-12d3-a456-426614174000"
#define CONNECTION_ID "f47ac10b-58cc-4372-a567-0e02b2c3d479"

/* the value of ADDRESSES for vector_ipv4 () */
#define ADDRESSES_IPV4_HEX                                                                         \
  "04 CB 00 71 07 00 00 00 00 00 00 00 00 00 00 00 00"                                             \
  "C6 33 64 01 00 00 00 00 00 00 00 00 00 00 00 00 C8 22 1F 90"

static void
test_addresses_tag (void)
{
  ZltUuid sid, cid;
  ZltAddresses v4 = vector_ipv4 (), v6 = vector_ipv6 ();
  g_autoptr (ZltMessage) connect = NULL;
  g_autoptr (ZltMessage) back = NULL;
  g_autoptr (ZltMessage) back6 = NULL;
  g_autoptr (ZltMessage) heartbeat = zlt_message_new_heartbeat (1);
  g_autoptr (GBytes) frame = NULL;
  g_autoptr (GBytes) tail = zlt_test_bytes_from_hex ("02 11 00 25 " ADDRESSES_IPV4_HEX);
  g_autoptr (GError) error = NULL;
  g_autofree char *text = NULL;
  const guint8 *data;
  gsize len;

  g_assert_true (zlt_uuid_parse (SERVICE_ID, &sid));
  g_assert_true (zlt_uuid_parse (CONNECTION_ID, &cid));
  connect = zlt_message_new_connect (&sid, &cid, "203.0.113.7:51234");
  zlt_message_set_addresses (connect, &v4);
  frame = zlt_message_encode_bytes (connect, &error);
  g_assert_no_error (error);
  data = g_bytes_get_data (frame, &len);
  /* the extension block is the marker and one entry: tag 0x11, 37 bytes */
  g_assert_cmpuint (len, >, g_bytes_get_size (tail));
  g_assert_cmpmem (data + len - g_bytes_get_size (tail), g_bytes_get_size (tail),
                   g_bytes_get_data (tail, NULL), g_bytes_get_size (tail));
  back = zlt_message_decode (data, len, NULL, &error);
  g_assert_no_error (error);
  g_assert_true (zlt_message_has_ext_fields (back, ZLT_EXT_ADDRESSES));
  g_assert_true (zlt_addresses_equal (&back->ext.addresses, &v4));
  g_assert_cmpstr (back->client_addr, ==, "203.0.113.7:51234");
  text = zlt_message_to_string (back);
  g_assert_nonnull (strstr (text, "addresses=203.0.113.7:51234 > 198.51.100.1:8080"));

  /* IPv6 round trip */
  zlt_message_set_addresses (connect, &v6);
  g_clear_pointer (&frame, g_bytes_unref);
  frame = zlt_message_encode_bytes (connect, &error);
  g_assert_no_error (error);
  data = g_bytes_get_data (frame, &len);
  back6 = zlt_message_decode (data, len, NULL, &error);
  g_assert_no_error (error);
  g_assert_true (zlt_addresses_equal (&back6->ext.addresses, &v6));

  /* a Connect's tag only */
  zlt_message_set_addresses (heartbeat, &v4);
  g_assert_null (zlt_message_encode_bytes (heartbeat, &error));
  g_assert_error (error, ZLT_ERROR, ZLT_ERROR_ENCODE);
  g_clear_error (&error);

  /* exactly 37 bytes: one short is a protocol error */
  {
    g_autoptr (GByteArray) bad = g_byte_array_new ();
    g_autoptr (ZltMessage) plain = zlt_message_new_connect (&sid, &cid, "x");
    g_autoptr (GBytes) plain_frame = zlt_message_encode_bytes (plain, &error);
    g_autoptr (GBytes) entry
        = zlt_test_bytes_from_hex ("02 11 00 24 04 CB 00 71 07 00 00 00 00 00 00 00 00 00 00 00 00"
                                   "C6 33 64 01 00 00 00 00 00 00 00 00 00 00 00 00 C8 22 1F");
    gsize payload;
    ZltMessage *m;

    g_assert_no_error (error);
    g_byte_array_append (bad, g_bytes_get_data (plain_frame, NULL),
                         (guint) g_bytes_get_size (plain_frame));
    g_byte_array_append (bad, g_bytes_get_data (entry, NULL), (guint) g_bytes_get_size (entry));
    payload = bad->len - ZLT_HEADER_SIZE;
    bad->data[1] = (guint8) (payload >> 24);
    bad->data[2] = (guint8) (payload >> 16);
    bad->data[3] = (guint8) (payload >> 8);
    bad->data[4] = (guint8) payload;
    m = zlt_message_decode (bad->data, bad->len, NULL, &error);
    g_assert_null (m);
    g_assert_error (error, ZLT_ERROR, ZLT_ERROR_PROTOCOL);
  }
}

static void
test_binding_addresses (void)
{
  ZltUuid sid, cid;
  ZltAddresses v4 = vector_ipv4 ();
  guint8 out[ZLT_BINDING_MAX_SIZE + 4];
  g_autoptr (GBytes) expected = zlt_test_bytes_from_hex (
      "B2 F47AC10B58CC4372A5670E02B2C3D479 123E4567E89B12D3A456426614174000 0F"
      "3230332E302E3131332E373A343433 " ADDRESSES_IPV4_HEX);
  ZltBinding binding;
  gsize len, consumed;

  g_assert_true (zlt_uuid_parse (SERVICE_ID, &sid));
  g_assert_true (zlt_uuid_parse (CONNECTION_ID, &cid));
  len = zlt_binding_encode_full (&cid, &sid, "203.0.113.7:443", &v4, out);
  g_assert_cmpmem (out, len, g_bytes_get_data (expected, NULL), g_bytes_get_size (expected));
  /* byte by byte: incomplete until the last */
  for (gsize i = 0; i < len; i++)
    g_assert_cmpint (zlt_binding_decode (out, i, &binding, &consumed), ==, ZLT_BINDING_INCOMPLETE);
  out[len] = 'G';
  g_assert_cmpint (zlt_binding_decode (out, len + 1, &binding, &consumed), ==,
                   ZLT_BINDING_COMPLETE);
  g_assert_cmpuint (consumed, ==, len);
  g_assert_true (binding.has_addresses);
  g_assert_true (zlt_addresses_equal (&binding.addresses, &v4));
  g_assert_cmpstr (binding.client_addr, ==, "203.0.113.7:443");

  /* format 1 still decodes, without addresses */
  len = zlt_binding_encode_full (&cid, &sid, "203.0.113.7:443", NULL, out);
  g_assert_cmpuint (out[0], ==, ZLT_BINDING_MAGIC);
  g_assert_cmpint (zlt_binding_decode (out, len, &binding, &consumed), ==, ZLT_BINDING_COMPLETE);
  g_assert_false (binding.has_addresses);
}

/* ---- the config key ---- */

static ZltClientConfig *
config_with (const char *protocol, const char *proxy, GError **error)
{
  g_autoptr (GKeyFile) kf = g_key_file_new ();

  g_key_file_set_string (kf, "agent", "server", "ws://127.0.0.1:1/tunnel/v1");
  g_key_file_set_string (kf, "agent", "token-env", "ZLT_TEST_TOKEN");
  g_key_file_set_string (kf, "service:web", "protocol", protocol);
  g_key_file_set_integer (kf, "service:web", "local-port", 8080);
  if (proxy != NULL)
    g_key_file_set_string (kf, "service:web", "proxy-protocol", proxy);
  return zlt_client_config_new_from_keyfile (kf, error);
}

static void
test_config (void)
{
  const struct
  {
    const char *protocol;
    const char *value;
    ZltProxyProtocol expected;
  } good[] = {
    { "tcp", NULL, ZLT_PROXY_PROTOCOL_NONE },   { "tcp", "none", ZLT_PROXY_PROTOCOL_NONE },
    { "tcp", "v1", ZLT_PROXY_PROTOCOL_V1 },     { "tcp", "v2", ZLT_PROXY_PROTOCOL_V2 },
    { "udp", "none", ZLT_PROXY_PROTOCOL_NONE },
  };
  const struct
  {
    const char *protocol;
    const char *value;
    const char *message;
  } bad[] = {
    { "tcp", "v3", "must be none, v1 or v2, not ‘v3’" },
    { "tcp", "V1", "must be none, v1 or v2" },
    { "tcp", "", "must not be empty" },
    { "udp", "v1", "only tcp services get a PROXY header" },
    { "udp", "v2", "only tcp services get a PROXY header" },
  };

  for (guint i = 0; i < G_N_ELEMENTS (good); i++)
    {
      g_autoptr (GError) error = NULL;
      g_autoptr (ZltClientConfig) config = config_with (good[i].protocol, good[i].value, &error);
      g_autoptr (GKeyFile) written = NULL;
      g_autoptr (ZltClientConfig) again = NULL;
      g_autofree char *value = NULL;
      const ZltServiceConfig *sc;

      g_assert_no_error (error);
      sc = zlt_client_config_lookup_service (config, "web");
      g_assert_cmpint (sc->proxy_protocol, ==, good[i].expected);
      /* written out and read back the same */
      written = zlt_client_config_to_keyfile (config);
      value = g_key_file_get_string (written, "service:web", "proxy-protocol", NULL);
      g_assert_cmpstr (value, ==, zlt_proxy_protocol_to_string (good[i].expected));
      again = zlt_client_config_new_from_keyfile (written, &error);
      g_assert_no_error (error);
      g_assert_cmpint (zlt_client_config_lookup_service (again, "web")->proxy_protocol, ==,
                       good[i].expected);
    }
  for (guint i = 0; i < G_N_ELEMENTS (bad); i++)
    {
      g_autoptr (GError) error = NULL;
      g_autoptr (ZltClientConfig) config = config_with (bad[i].protocol, bad[i].value, &error);

      g_assert_null (config);
      g_assert_error (error, ZLT_ERROR, ZLT_ERROR_INVALID_CONFIG);
      g_test_message ("%s", error->message);
      g_assert_nonnull (strstr (error->message, "proxy-protocol"));
      g_assert_nonnull (strstr (error->message, bad[i].message));
    }
}

/* ---- end to end, with HAProxy as the service ---- */

/* Every log line a user sees without -v. */
static GPtrArray *shown_lines;

static GLogWriterOutput
capture_writer (GLogLevelFlags level, const GLogField *fields, gsize n_fields, gpointer user_data)
{
  if ((level & (G_LOG_LEVEL_DEBUG | G_LOG_LEVEL_INFO)) == 0)
    for (gsize i = 0; i < n_fields; i++)
      if (g_strcmp0 (fields[i].key, "MESSAGE") == 0)
        g_ptr_array_add (shown_lines, fields[i].length < 0
                                          ? g_strdup (fields[i].value)
                                          : g_strndup (fields[i].value, fields[i].length));
  return g_log_writer_default (level, fields, n_fields, user_data);
}

static guint
count_shown (const char *needle)
{
  guint n = 0;

  for (guint i = 0; i < shown_lines->len; i++)
    if (strstr (g_ptr_array_index (shown_lines, i), needle) != NULL)
      n++;
  return n;
}

typedef struct
{
  gboolean ipv6;             /* public clients (and the server) on ::1 */
  ZltProxyProtocol version;  /* what the service is configured for */
  gboolean standby;          /* joined to standby connections, or announced by Connect */
  gboolean server_addresses; /* the server sends client addresses */
} Case;

typedef struct
{
  ZltTestHarness h;
  GSubprocess *haproxy;
  guint16 haproxy_port;
} Fixture;

static gboolean
port_accepts (guint16 port)
{
  g_autoptr (GSocketClient) client = g_socket_client_new ();
  g_autoptr (GSocketConnection) conn = NULL;

  conn = g_socket_client_connect_to_host (client, "127.0.0.1", port, NULL, NULL);
  return conn != NULL;
}

static void
die_with_parent (gpointer data)
{
  prctl (PR_SET_PDEATHSIG, SIGKILL);
}

/* Debian installs it in /usr/sbin, which a user's PATH may lack */
static char *
find_haproxy (void)
{
  char *path = g_find_program_in_path ("haproxy");

  if (path == NULL && g_file_test ("/usr/sbin/haproxy", G_FILE_TEST_IS_EXECUTABLE))
    path = g_strdup ("/usr/sbin/haproxy");
  return path;
}

/* HAProxy on 127.0.0.1 taking PROXY headers (v1 and v2 alike: accept-proxy tells them
 * apart), answering every HTTP request with the two ends it was told of. */
static void
start_haproxy (Fixture *f)
{
  g_autofree char *path = g_build_filename (f->h.tmpdir, "haproxy.cfg", NULL);
  g_autofree char *cfg = NULL;
  g_autoptr (GError) error = NULL;
  g_autoptr (GSubprocessLauncher) launcher = NULL;
  g_autofree char *haproxy = find_haproxy ();

  /* a port that was free a moment ago: HAProxy's config needs a number */
  f->haproxy_port = zlt_test_closed_port ();
  cfg = g_strdup_printf ("global\n"
                         "  maxconn 64\n"
                         "defaults\n"
                         "  mode http\n"
                         "  timeout connect 5s\n"
                         "  timeout client 10s\n"
                         "  timeout server 10s\n"
                         "frontend fe\n"
                         "  bind 127.0.0.1:%u accept-proxy\n"
                         "  http-request return status 200 content-type text/plain "
                         "lf-string \"%%[src]:%%[src_port] %%[dst]:%%[dst_port]\"\n",
                         f->haproxy_port);
  g_assert_true (g_file_set_contents (path, cfg, -1, &error));
  g_assert_no_error (error);
  launcher = g_subprocess_launcher_new (G_SUBPROCESS_FLAGS_STDOUT_SILENCE);
  /* it dies with the test, whatever becomes of the test */
  g_subprocess_launcher_set_child_setup (launcher, die_with_parent, NULL, NULL);
  f->haproxy
      = g_subprocess_launcher_spawn (launcher, &error, haproxy, "-db", "-q", "-f", path, NULL);
  g_assert_no_error (error);
  /* no identifier: it has exited (a bad config, the port taken meanwhile) */
  ZLT_TEST_WAIT_FOR (
      g_subprocess_get_identifier (f->haproxy) == NULL || port_accepts (f->haproxy_port), 10000);
  g_assert_nonnull (g_subprocess_get_identifier (f->haproxy));
}

static void
fixture_setup (Fixture *f, gconstpointer data)
{
  const Case *c = data;

  zlt_test_use_ipv6 (c->ipv6);
  zlt_test_harness_init (&f->h, PORT_RANGE);
}

static void
fixture_teardown (Fixture *f, gconstpointer data)
{
  if (f->haproxy != NULL)
    {
      /* the one process this test started, by its own handle */
      zlt_test_process_stop (f->haproxy, 10000);
      g_clear_object (&f->haproxy);
    }
  zlt_test_harness_clear (&f->h);
  zlt_test_use_ipv6 (FALSE);
}

typedef struct
{
  guint16 port;
  /* results */
  char *local; /* "ip:port" of the client's end */
  GString *reply;
  char *error;
  gint done;
} Ask;

static gpointer
ask_thread (gpointer data)
{
  Ask *a = data;
  g_autoptr (GSocketClient) client = g_socket_client_new ();
  g_autoptr (GSocketConnection) conn = NULL;
  g_autoptr (GSocketAddress) local = NULL;
  g_autoptr (GError) error = NULL;
  g_autofree char *ip = NULL;
  const char request[] = "GET / HTTP/1.0\r\n\r\n";
  char buf[1024];
  gssize n;

  a->reply = g_string_new (NULL);
  conn = g_socket_client_connect_to_host (client, zlt_test_loopback (), a->port, NULL, &error);
  if (conn == NULL)
    goto out;
  local = g_socket_connection_get_local_address (conn, &error);
  if (local == NULL)
    goto out;
  ip = g_inet_address_to_string (g_inet_socket_address_get_address (G_INET_SOCKET_ADDRESS (local)));
  a->local = g_strdup_printf ("%s:%u", ip,
                              g_inet_socket_address_get_port (G_INET_SOCKET_ADDRESS (local)));
  if (!g_output_stream_write_all (g_io_stream_get_output_stream (G_IO_STREAM (conn)), request,
                                  sizeof request - 1, NULL, NULL, &error))
    goto out;
  while ((n = g_input_stream_read (g_io_stream_get_input_stream (G_IO_STREAM (conn)), buf,
                                   sizeof buf, NULL, &error))
         > 0)
    {
      g_string_append_len (a->reply, buf, n);
      if (a->reply->len > 64 * 1024)
        break;
    }
out:
  if (error != NULL)
    a->error = g_strdup (error->message);
  g_atomic_int_set (&a->done, 1);
  return NULL;
}

/* One HTTP request through the tunnel's public @port; returns the body HAProxy
 * answered with, and in @local the client's own end. */
static char *
ask (guint16 port, char **local)
{
  Ask a = { 0 };
  GThread *thread;
  const char *body;
  char *result;

  a.port = port;
  thread = g_thread_new ("ask", ask_thread, &a);
  ZLT_TEST_WAIT_FOR (g_atomic_int_get (&a.done), 20000);
  g_thread_join (thread);
  g_assert_null (a.error);
  g_assert_true (g_str_has_prefix (a.reply->str, "HTTP/1.1 200"));
  body = strstr (a.reply->str, "\r\n\r\n");
  g_assert_nonnull (body);
  result = g_strdup (body + 4);
  *local = a.local;
  g_string_free (a.reply, TRUE);
  return result;
}

static void
test_haproxy (Fixture *f, gconstpointer data)
{
  const Case *c = data;
  g_autofree char *group = g_strdup ("service:web");
  guint16 port;
  guint first_log = count_shown ("the server sends no client addresses");

  g_autofree char *haproxy = find_haproxy ();

  if (haproxy == NULL)
    {
      g_test_skip ("haproxy is not installed (.ci/deps installs it)");
      return;
    }
  start_haproxy (f);
  g_key_file_set_integer (f->h.server_keyfile, "server", "standby-connections", c->standby ? 8 : 0);
  zlt_test_harness_start_server (&f->h);
  zlt_server_set_send_addresses (f->h.server, c->server_addresses);
  zlt_test_harness_add_service (&f->h, "web", f->haproxy_port, 0);
  g_key_file_set_string (f->h.agent_keyfile, group, "proxy-protocol",
                         zlt_proxy_protocol_to_string (c->version));
  zlt_test_harness_start_agent (&f->h);
  port = zlt_test_harness_wait_registered (&f->h, "web");
  if (c->standby)
    ZLT_TEST_WAIT_FOR (zlt_server_get_n_standby (f->h.server) > 0, 10000);

  for (guint i = 0; i < 3; i++)
    {
      g_autofree char *local = NULL;
      g_autofree char *body = ask (port, &local);
      g_autofree char *expected = NULL;

      if (c->server_addresses)
        {
          /* the client's end and the public port, as the server saw them */
          expected = g_strdup_printf ("%s %s:%u", local, zlt_test_loopback (), port);
          g_assert_cmpstr (body, ==, expected);
        }
      else
        {
          /* UNKNOWN or LOCAL: HAProxy keeps the agent's own connection, from
           * 127.0.0.1 to itself */
          expected = g_strdup_printf (" 127.0.0.1:%u", f->haproxy_port);
          g_assert_true (g_str_has_prefix (body, "127.0.0.1:"));
          g_assert_true (g_str_has_suffix (body, expected));
          g_assert_cmpstr (body, !=, local);
        }
    }
  if (c->standby)
    g_assert_cmpuint (zlt_server_get_n_standby_joins (f->h.server), >=, 1);
  else
    g_assert_cmpuint (zlt_server_get_n_standby_joins (f->h.server), ==, 0);
  /* an agent told nothing says so once, not once per connection */
  g_assert_cmpuint (count_shown ("the server sends no client addresses") - first_log, ==,
                    c->server_addresses ? 0 : 1);
}

/* A service without proxy-protocol gets the client's bytes only: HAProxy, which
 * wants a header, closes the connection rather than answer. */
static void
test_haproxy_none (Fixture *f, gconstpointer data)
{
  ZltTestRaw raw = { 0 };
  GThread *thread;
  guint16 port;

  g_autofree char *haproxy = find_haproxy ();

  if (haproxy == NULL)
    {
      g_test_skip ("haproxy is not installed (.ci/deps installs it)");
      return;
    }
  start_haproxy (f);
  zlt_test_harness_start_server (&f->h);
  zlt_test_harness_add_service (&f->h, "web", f->haproxy_port, 0);
  zlt_test_harness_start_agent (&f->h);
  port = zlt_test_harness_wait_registered (&f->h, "web");
  raw.port = port;
  raw.request = "GET / HTTP/1.0\r\n\r\n";
  thread = zlt_test_raw_start (&raw);
  zlt_test_raw_finish (thread, &raw, 20000);
  g_assert_true (raw.connected);
  g_assert_true (raw.closed);
  g_assert_false (g_str_has_prefix (raw.reply->str, "HTTP/1.1 200"));
  zlt_test_raw_clear (&raw);
}

/* An access session's stream reaches an internal service like a public connection: the
 * header names the access client's connection to the server (its control port) */
static void
test_haproxy_access (Fixture *f, gconstpointer data)
{
  g_autofree char *haproxy = find_haproxy ();
  g_autofree char *expires = NULL;
  g_autofree char *fields = NULL;
  g_autofree char *token = NULL;
  g_autofree char *token_path = NULL;
  g_autofree char *agent_data = NULL;
  g_autofree char *local = NULL;
  g_autofree char *body = NULL;
  g_autofree char *expected = NULL;
  g_autoptr (GKeyFile) keyfile = g_key_file_new ();
  g_autoptr (ZltClientConfig) config = NULL;
  g_autoptr (ZltAccessManager) manager = NULL;
  g_autoptr (ZltSession) session = NULL;
  g_autoptr (GError) error = NULL;

  if (haproxy == NULL)
    {
      g_test_skip ("haproxy is not installed (.ci/deps installs it)");
      return;
    }
  start_haproxy (f);
  expires = g_strdup_printf ("%" G_GINT64_FORMAT, g_get_real_time () / G_USEC_PER_SEC + 3600);
  fields = g_strdup_printf ("name=access reach=web expires=%s", expires);
  token = zlt_test_harness_add_token (&f->h, fields);
  token_path = g_build_filename (f->h.tmpdir, "access-token", NULL);
  g_file_set_contents_full (token_path, token, -1, G_FILE_SET_CONTENTS_CONSISTENT, 0600, &error);
  g_assert_no_error (error);

  zlt_test_harness_start_server (&f->h);
  zlt_test_harness_add_service (&f->h, "web", f->haproxy_port, 0);
  g_key_file_set_string (f->h.agent_keyfile, "service:web", "expose", "internal");
  g_key_file_set_string (f->h.agent_keyfile, "service:web", "proxy-protocol", "v2");
  zlt_test_harness_start_agent (&f->h);
  ZLT_TEST_WAIT_FOR (
      zlt_registry_lookup_service_by_name (zlt_server_get_registry (f->h.server), "web", NULL)
          != NULL,
      10000);

  /* the access client: the agent's settings with its own token */
  agent_data = g_key_file_to_data (f->h.agent_keyfile, NULL, NULL);
  g_assert_true (
      g_key_file_load_from_data (keyfile, agent_data, (gsize) -1, G_KEY_FILE_NONE, &error));
  g_key_file_set_string (keyfile, "agent", "token-file", token_path);
  config = zlt_client_config_new_from_keyfile (keyfile, &error);
  g_assert_no_error (error);
  manager = zlt_access_manager_new (config, f->h.loader, &error);
  g_assert_no_error (error);
  session = zlt_access_manager_start_session (manager, "web", 0, 3600, &error);
  g_assert_no_error (error);

  body = ask (zlt_access_manager_get_local_port (manager, session), &local);
  expected = g_strdup_printf (" %s:%u", zlt_test_loopback (), zlt_server_get_port (f->h.server));
  g_assert_true (g_str_has_prefix (body, "127.0.0.1:"));
  g_assert_true (g_str_has_suffix (body, expected));
  /* the server's port, not HAProxy's own (the agent's connection) */
  g_assert_cmpuint (zlt_server_get_port (f->h.server), !=, f->haproxy_port);
}

static const Case case_v1_ipv4 = { FALSE, ZLT_PROXY_PROTOCOL_V1, TRUE, TRUE };
static const Case case_v1_ipv6 = { TRUE, ZLT_PROXY_PROTOCOL_V1, TRUE, TRUE };
static const Case case_v2_ipv4 = { FALSE, ZLT_PROXY_PROTOCOL_V2, TRUE, TRUE };
static const Case case_v2_ipv6 = { TRUE, ZLT_PROXY_PROTOCOL_V2, TRUE, TRUE };
static const Case case_v1_connect = { TRUE, ZLT_PROXY_PROTOCOL_V1, FALSE, TRUE };
static const Case case_v2_connect = { FALSE, ZLT_PROXY_PROTOCOL_V2, FALSE, TRUE };
static const Case case_v1_old = { TRUE, ZLT_PROXY_PROTOCOL_V1, TRUE, FALSE };
static const Case case_v2_old = { TRUE, ZLT_PROXY_PROTOCOL_V2, FALSE, FALSE };
static const Case case_none = { FALSE, ZLT_PROXY_PROTOCOL_NONE, TRUE, TRUE };

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  shown_lines = g_ptr_array_new_with_free_func (g_free);
  g_log_set_writer_func (capture_writer, NULL, NULL);

  g_test_add_func ("/proxy-protocol/header/v1", test_header_v1);
  g_test_add_func ("/proxy-protocol/header/v2", test_header_v2);
  g_test_add_func ("/proxy-protocol/addresses/sockets", test_addresses_from_sockets);
  g_test_add_func ("/proxy-protocol/addresses/tag", test_addresses_tag);
  g_test_add_func ("/proxy-protocol/addresses/binding", test_binding_addresses);
  g_test_add_func ("/proxy-protocol/config", test_config);
#define ADD(path, c, func) g_test_add (path, Fixture, &c, fixture_setup, func, fixture_teardown)
  ADD ("/proxy-protocol/haproxy/v1/ipv4", case_v1_ipv4, test_haproxy);
  ADD ("/proxy-protocol/haproxy/v1/ipv6", case_v1_ipv6, test_haproxy);
  ADD ("/proxy-protocol/haproxy/v2/ipv4", case_v2_ipv4, test_haproxy);
  ADD ("/proxy-protocol/haproxy/v2/ipv6", case_v2_ipv6, test_haproxy);
  ADD ("/proxy-protocol/haproxy/v1/connect", case_v1_connect, test_haproxy);
  ADD ("/proxy-protocol/haproxy/v2/connect", case_v2_connect, test_haproxy);
  ADD ("/proxy-protocol/haproxy/v1/old-server", case_v1_old, test_haproxy);
  ADD ("/proxy-protocol/haproxy/v2/old-server", case_v2_old, test_haproxy);
  ADD ("/proxy-protocol/haproxy/none", case_none, test_haproxy_none);
  ADD ("/proxy-protocol/haproxy/access", case_none, test_haproxy_access);
#undef ADD
  {
    int ret = g_test_run ();
    g_ptr_array_unref (shown_lines);
    return ret;
  }
}
