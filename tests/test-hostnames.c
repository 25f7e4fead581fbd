/* test-hostnames.c: hostnames on the shared HTTP and TLS ports (issue 13 item 3)
 *
 * The Host and SNI parsers on crafted bytes, then a real server and agent on loopback
 * with two services claimed by hostname, reached with Debian's curl --resolve through
 * the shared ports: by Host over HTTP, by SNI over TLS the service terminates (the
 * tunnel relays the ClientHello it peeked). Unknown hosts get a 404 page or an
 * unrecognized_name alert; a token without the right is refused; a head past the bound
 * and a silent client are closed. */
#include "config.h"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <string.h>

#include "zlt-host-listener.h"
#include "zlt-host-sniff.h"
#include "zlt-server-private.h"
#include "zlt-test-util.h"

/* ---- parsers ---- */

static ZltSniffResult
http (const char *text, char **host)
{
  return zlt_sniff_http_host ((const guint8 *) text, strlen (text), host);
}

static void
test_http_parser (void)
{
  g_autofree char *host = NULL;
  g_autofree char *big = NULL;
  GString *s;

  g_assert_cmpint (http ("GET / HTTP/1.1\r\nHost: A.Apps.Example.TEST:8080\r\n\r\n", &host), ==,
                   ZLT_SNIFF_FOUND);
  g_assert_cmpstr (host, ==, "a.apps.example.test");
  g_clear_pointer (&host, g_free);
  g_assert_cmpint (http ("GET / HTTP/1.1\nUser-Agent: x\nhost:\tb.example.test \n\n", &host), ==,
                   ZLT_SNIFF_FOUND);
  g_assert_cmpstr (host, ==, "b.example.test");
  g_clear_pointer (&host, g_free);
  /* not complete yet */
  g_assert_cmpint (http ("GET / HTTP/1.1\r\nHost: a.example.test\r\n", &host), ==,
                   ZLT_SNIFF_NEED_MORE);
  g_assert_null (host);
  g_assert_cmpint (http ("GE", &host), ==, ZLT_SNIFF_NEED_MORE);
  /* no Host, two Hosts, bad names, bad ports, IPv6 literals */
  g_assert_cmpint (http ("GET / HTTP/1.0\r\n\r\n", &host), ==, ZLT_SNIFF_NO_HOST);
  g_assert_cmpint (http ("GET / HTTP/1.1\r\nHost: a.test\r\nHost: b.test\r\n\r\n", &host), ==,
                   ZLT_SNIFF_NO_HOST);
  g_assert_cmpint (http ("GET / HTTP/1.1\r\nHost: a..test\r\n\r\n", &host), ==, ZLT_SNIFF_NO_HOST);
  g_assert_cmpint (http ("GET / HTTP/1.1\r\nHost: a.test:8x\r\n\r\n", &host), ==,
                   ZLT_SNIFF_NO_HOST);
  g_assert_cmpint (http ("GET / HTTP/1.1\r\nHost: [::1]:80\r\n\r\n", &host), ==, ZLT_SNIFF_NO_HOST);
  g_assert_cmpint (http ("GET / HTTP/1.1\r\nHost: \r\n\r\n", &host), ==, ZLT_SNIFF_NO_HOST);
  g_assert_null (host);
  /* TLS on the HTTP port, binary junk */
  g_assert_cmpint (zlt_sniff_http_host ((const guint8 *) "\x16\x03\x01", 3, &host), ==,
                   ZLT_SNIFF_BAD);
  /* past the bound without an end */
  s = g_string_new ("GET / HTTP/1.1\r\n");
  while (s->len < ZLT_SNIFF_HTTP_MAX)
    g_string_append (s, "X-Filler: 0123456789abcdef0123456789abcdef\r\n");
  big = g_string_free (s, FALSE);
  g_assert_cmpint (http (big, &host), ==, ZLT_SNIFF_TOO_LARGE);
  g_assert_null (host);
}

/* A ClientHello record with @sni (NULL: no server_name extension), as a client would
 * send it: a session id, two suites, one compression method, an extension before the
 * server_name one; @pad bytes of a padding extension (RFC 7685) before that when not 0
 * (the record's length field is then only right up to 2^14). */
static GByteArray *
client_hello_padded (const char *sni, gsize pad)
{
  GByteArray *body = g_byte_array_new ();
  GByteArray *exts = g_byte_array_new ();
  GByteArray *rec = g_byte_array_new ();
  guint8 random[32] = { 0 };
  guint8 head[6];

  g_byte_array_append (body, (const guint8 *) "\x03\x03", 2);
  g_byte_array_append (body, random, 32);
  g_byte_array_append (body,
                       (const guint8 *) "\x04"
                                        "abcd",
                       5);
  g_byte_array_append (body, (const guint8 *) "\x00\x04\x13\x01\x13\x02", 6);
  g_byte_array_append (body, (const guint8 *) "\x01\x00", 2);
  /* supported_versions: 2 bytes of list length 2, TLS 1.3 */
  g_byte_array_append (exts, (const guint8 *) "\x00\x2b\x00\x03\x02\x03\x04", 7);
  if (pad > 0)
    {
      guint8 e[4] = { 0x00, 0x15, (guint8) (pad >> 8), (guint8) pad };
      g_autofree guint8 *zeros = g_malloc0 (pad);

      g_byte_array_append (exts, e, 4);
      g_byte_array_append (exts, zeros, (guint) pad);
    }
  if (sni != NULL)
    {
      guint16 n = (guint16) strlen (sni);
      guint8 e[9] = { 0x00,
                      0x00,
                      (guint8) ((n + 5) >> 8),
                      (guint8) (n + 5),
                      (guint8) ((n + 3) >> 8),
                      (guint8) (n + 3),
                      0x00,
                      (guint8) (n >> 8),
                      (guint8) n };
      g_byte_array_append (exts, e, 9);
      g_byte_array_append (exts, (const guint8 *) sni, n);
    }
  head[0] = (guint8) (exts->len >> 8);
  head[1] = (guint8) exts->len;
  g_byte_array_append (body, head, 2);
  g_byte_array_append (body, exts->data, exts->len);
  head[0] = 0x16, head[1] = 0x03, head[2] = 0x01;
  head[3] = (guint8) ((body->len + 4) >> 8), head[4] = (guint8) (body->len + 4);
  g_byte_array_append (rec, head, 5);
  head[0] = 0x01, head[1] = (guint8) (body->len >> 16), head[2] = (guint8) (body->len >> 8),
  head[3] = (guint8) body->len;
  g_byte_array_append (rec, head, 4);
  g_byte_array_append (rec, body->data, body->len);
  g_byte_array_unref (body);
  g_byte_array_unref (exts);
  return rec;
}

static GByteArray *
client_hello (const char *sni)
{
  return client_hello_padded (sni, 0);
}

/* The handshake message of @hello (a record from client_hello_padded()) cut into
 * records whose fragments take the sizes of @sizes in turn, the last one repeated. */
static GByteArray *
split_records (GByteArray *hello, const gsize *sizes, gsize n_sizes)
{
  GByteArray *out = g_byte_array_new ();
  const guint8 *msg = hello->data + 5;
  gsize left = hello->len - 5;

  for (gsize i = 0; left > 0; i++)
    {
      gsize n = MIN (sizes[MIN (i, n_sizes - 1)], left);
      guint8 head[5] = { 0x16, 0x03, 0x01, (guint8) (n >> 8), (guint8) n };

      g_byte_array_append (out, head, 5);
      g_byte_array_append (out, msg, (guint) n);
      msg += n;
      left -= n;
    }
  return out;
}

static ZltSniffResult
tls (GByteArray *data, gsize len, char **host)
{
  g_clear_pointer (host, g_free);
  return zlt_sniff_tls_sni (data->data, MIN (len, data->len), host);
}

/* A ClientHello split over records, however the records are cut: the name is found
 * once the message is whole, and nothing is a verdict before. */
static void
test_tls_parser_split (void)
{
  g_autoptr (GByteArray) hello = client_hello ("Split.Apps.Example.Test");
  g_autofree char *host = NULL;
  gsize msg_len = hello->len - 5;

  /* two records, cut at every byte of the message (the 4-byte header too) */
  for (gsize cut = 1; cut < msg_len; cut++)
    {
      gsize sizes[2] = { cut, msg_len };
      g_autoptr (GByteArray) two = split_records (hello, sizes, 2);

      g_assert_cmpint (tls (two, two->len, &host), ==, ZLT_SNIFF_FOUND);
      g_assert_cmpstr (host, ==, "split.apps.example.test");
      /* the first record alone, or part of the second: read more */
      g_assert_cmpint (tls (two, 5 + cut, &host), ==, ZLT_SNIFF_NEED_MORE);
      g_assert_null (host);
      g_assert_cmpint (tls (two, two->len - 1, &host), ==, ZLT_SNIFF_NEED_MORE);
      g_assert_null (host);
    }

  /* a record per byte, as TCP might deliver it in any pieces: every prefix is "read
   * more", the whole is found */
  {
    gsize one = 1;
    g_autoptr (GByteArray) bytes = split_records (hello, &one, 1);

    g_assert_cmpuint (bytes->len, ==, msg_len * 6);
    for (gsize len = 0; len < bytes->len; len++)
      {
        g_assert_cmpint (tls (bytes, len, &host), ==, ZLT_SNIFF_NEED_MORE);
        g_assert_null (host);
      }
    g_assert_cmpint (tls (bytes, bytes->len, &host), ==, ZLT_SNIFF_FOUND);
    g_assert_cmpstr (host, ==, "split.apps.example.test");
  }

  /* what follows the hello (more records, the client's next flight) is not read */
  {
    g_autoptr (GByteArray) more = g_byte_array_new ();

    g_byte_array_append (more, hello->data, hello->len);
    g_byte_array_append (more, (const guint8 *) "\x14\x03\x03\x00\x01\x01", 6);
    g_assert_cmpint (tls (more, more->len, &host), ==, ZLT_SNIFF_FOUND);
    g_assert_cmpstr (host, ==, "split.apps.example.test");
  }

  /* a large hello (a padding extension before server_name) over three records */
  {
    g_autoptr (GByteArray) big = client_hello_padded ("big.apps.example.test", 12000);
    gsize sizes[1] = { 5000 };
    g_autoptr (GByteArray) three = split_records (big, sizes, 1);

    g_assert_cmpuint (big->len - 5, >, 2 * 5000);
    g_assert_cmpint (tls (three, three->len, &host), ==, ZLT_SNIFF_FOUND);
    g_assert_cmpstr (host, ==, "big.apps.example.test");
  }
}

/* Malformed or unbounded splits: refused cleanly, never read past. */
static void
test_tls_parser_split_bad (void)
{
  g_autoptr (GByteArray) hello = client_hello ("split.apps.example.test");
  g_autofree char *host = NULL;
  gsize sizes[2] = { 10, 16384 };
  g_autoptr (GByteArray) two = split_records (hello, sizes, 2);

  /* an alert between the fragments */
  {
    g_autoptr (GByteArray) alert = g_byte_array_new ();

    g_byte_array_append (alert, two->data, 5 + 10);
    g_byte_array_append (alert, (const guint8 *) "\x15\x03\x03\x00\x02\x02\x28", 7);
    g_byte_array_append (alert, two->data + 15, two->len - 15);
    g_assert_cmpint (tls (alert, alert->len, &host), ==, ZLT_SNIFF_BAD);
    /* told apart from its first byte */
    g_assert_cmpint (tls (alert, 16, &host), ==, ZLT_SNIFF_BAD);
    g_assert_null (host);
  }
  /* the second record's version is not TLS's */
  two->data[15 + 1] = 0x02;
  g_assert_cmpint (tls (two, two->len, &host), ==, ZLT_SNIFF_BAD);
  two->data[15 + 1] = 0x03;
  /* an empty handshake record (RFC 8446 §5.1 forbids them) */
  {
    g_autoptr (GByteArray) empty = g_byte_array_new ();

    g_byte_array_append (empty, two->data, 5 + 10);
    g_byte_array_append (empty, (const guint8 *) "\x16\x03\x01\x00\x00", 5);
    g_byte_array_append (empty, two->data + 15, two->len - 15);
    g_assert_cmpint (tls (empty, empty->len, &host), ==, ZLT_SNIFF_BAD);
  }
  /* a handshake message that is not a ClientHello, split after its type */
  {
    gsize one[1] = { 1 };
    g_autoptr (GByteArray) bytes = split_records (hello, one, 1);

    bytes->data[5] = 0x02; /* ServerHello */
    g_assert_cmpint (tls (bytes, 6, &host), ==, ZLT_SNIFF_BAD);
  }
  /* an inner length past the reassembled message: bad, not a read past it */
  {
    g_autoptr (GByteArray) copy = g_byte_array_new ();

    g_byte_array_append (copy, two->data, two->len);
    /* the session id length: message offset 4 + 2 + 32, in the second record */
    copy->data[5 + 10 + 5 + (4 + 2 + 32 - 10)] = 0xff;
    g_assert_cmpint (tls (copy, copy->len, &host), ==, ZLT_SNIFF_BAD);
    g_assert_null (host);
  }
  /* a hello longer than the bound: refused as soon as its header says so */
  {
    const guint8 header[9] = { 0x16, 0x03, 0x01, 0x00, 0x04, 0x01, 0x00, 0x40, 0x01 };
    g_autoptr (GByteArray) large = g_byte_array_new ();

    g_byte_array_append (large, header, sizeof header); /* 16385 + 4 bytes > 16 KiB */
    g_assert_cmpint (tls (large, large->len, &host), ==, ZLT_SNIFF_TOO_LARGE);
  }
  {
    g_autoptr (GByteArray) padded
        = client_hello_padded ("big.apps.example.test", ZLT_SNIFF_TLS_HELLO_MAX);
    gsize max[1] = { 16384 };
    g_autoptr (GByteArray) split = split_records (padded, max, 1);

    g_assert_cmpint (tls (split, split->len, &host), ==, ZLT_SNIFF_TOO_LARGE);
    g_assert_null (host);
  }
  /* a hello within the bound, but in records so small that their headers take the
   * bytes past ZLT_SNIFF_TLS_MAX: refused at the bound, "read more" before it */
  {
    g_autoptr (GByteArray) padded = client_hello_padded ("big.apps.example.test", 6000);
    gsize one[1] = { 1 };
    g_autoptr (GByteArray) tiny = split_records (padded, one, 1);

    g_assert_cmpuint (tiny->len, >, ZLT_SNIFF_TLS_MAX);
    g_assert_cmpint (tls (tiny, ZLT_SNIFF_TLS_MAX - 1, &host), ==, ZLT_SNIFF_NEED_MORE);
    g_assert_cmpint (tls (tiny, ZLT_SNIFF_TLS_MAX, &host), ==, ZLT_SNIFF_TOO_LARGE);
    g_assert_null (host);
  }
}

static void
test_tls_parser (void)
{
  g_autoptr (GByteArray) hello = client_hello ("B.Apps.Example.Test");
  g_autoptr (GByteArray) nosni = client_hello (NULL);
  g_autoptr (GByteArray) badname = client_hello ("a\001b.test");
  g_autofree char *host = NULL;
  guint8 oversized[5] = { 0x16, 0x03, 0x01, 0x48, 0x01 }; /* 18433 > 2^14 */

  g_assert_cmpint (zlt_sniff_tls_sni (hello->data, hello->len, &host), ==, ZLT_SNIFF_FOUND);
  g_assert_cmpstr (host, ==, "b.apps.example.test");
  g_clear_pointer (&host, g_free);
  /* every truncation is "read more", never a verdict from half a record */
  for (guint cut = 0; cut < hello->len; cut++)
    {
      g_assert_cmpint (zlt_sniff_tls_sni (hello->data, cut, &host), ==, ZLT_SNIFF_NEED_MORE);
      g_assert_null (host);
    }
  g_assert_cmpint (zlt_sniff_tls_sni (nosni->data, nosni->len, &host), ==, ZLT_SNIFF_NO_HOST);
  g_assert_cmpint (zlt_sniff_tls_sni (badname->data, badname->len, &host), ==, ZLT_SNIFF_NO_HOST);
  g_assert_cmpint (zlt_sniff_tls_sni (oversized, sizeof oversized, &host), ==, ZLT_SNIFF_BAD);
  g_assert_cmpint (zlt_sniff_tls_sni ((const guint8 *) "GET / HTTP/1.1\r\n", 16, &host), ==,
                   ZLT_SNIFF_BAD);
  /* an inner length that overruns the record: bad, not a read past it */
  hello->data[9 + 2 + 32] = 0xff; /* session id length */
  g_assert_cmpint (zlt_sniff_tls_sni (hello->data, hello->len, &host), ==, ZLT_SNIFF_BAD);
  g_assert_null (host);
}

static void
test_patterns (void)
{
  g_assert_true (zlt_hostname_pattern_is_valid ("example.test"));
  g_assert_true (zlt_hostname_pattern_is_valid ("*.apps.example.test"));
  g_assert_false (zlt_hostname_pattern_is_valid ("*"));
  g_assert_false (zlt_hostname_pattern_is_valid ("a.*.test"));
  g_assert_false (zlt_hostname_pattern_is_valid ("Example.test"));
  g_assert_true (zlt_hostname_pattern_matches ("*.apps.example.test", "a.apps.example.test"));
  g_assert_true (zlt_hostname_pattern_matches ("*.apps.example.test", "x.a.apps.example.test"));
  g_assert_false (zlt_hostname_pattern_matches ("*.apps.example.test", "apps.example.test"));
  g_assert_false (zlt_hostname_pattern_matches ("*.apps.example.test", "aapps.example.test"));
  g_assert_true (zlt_hostname_pattern_matches ("example.test", "example.test"));
  g_assert_false (zlt_hostname_pattern_matches ("example.test", "a.example.test"));

  /* what token stores do with hostnames=: lower-case in place, name the first bad one */
  {
    g_auto (GStrv) good = g_strsplit ("App.Example.TEST,*.Apps.example.test", ",", -1);
    g_auto (GStrv) bad = g_strsplit ("a.example.test,*,b.example.test", ",", -1);
    g_auto (GStrv) none = g_new0 (char *, 1);

    g_assert_cmpint (zlt_hostname_patterns_normalize (good), ==, -1);
    g_assert_cmpstr (good[0], ==, "app.example.test");
    g_assert_cmpstr (good[1], ==, "*.apps.example.test");
    g_assert_cmpint (zlt_hostname_patterns_normalize (bad), ==, 1);
    g_assert_cmpint (zlt_hostname_patterns_normalize (none), ==, -1);
  }
}

/* PROTOCOL-v2.md §10's test vector: Register "web" tcp 8080 → any port, HOSTNAME */
#define REGISTER_HOSTNAME_HEX                                                                      \
  "1000000020037765620"                                                                            \
  "01f90000002120013612e617070732e6578616d706c652e74657374"

static void
test_register_tag (void)
{
  g_autoptr (ZltMessage) reg = zlt_message_new_register ("web", ZLT_PROTOCOL_TCP, 8080, 0);
  g_autoptr (GBytes) expected = zlt_test_bytes_from_hex (REGISTER_HOSTNAME_HEX);
  g_autoptr (GBytes) frame = NULL;
  g_autoptr (ZltMessage) back = NULL;
  g_autoptr (GError) error = NULL;
  g_autoptr (GByteArray) bad = NULL;
  gsize consumed = 0;

  zlt_message_set_hostname (reg, "a.apps.example.test");
  frame = zlt_message_encode_bytes (reg, &error);
  g_assert_no_error (error);
  g_assert_true (g_bytes_equal (frame, expected));
  back = zlt_message_decode (g_bytes_get_data (frame, NULL), g_bytes_get_size (frame), &consumed,
                             &error);
  g_assert_no_error (error);
  g_assert_true (zlt_message_has_ext_fields (back, ZLT_EXT_HOSTNAME));
  g_assert_cmpstr (back->hostname, ==, "a.apps.example.test");
  g_clear_pointer (&back, zlt_message_free);
  /* a NUL inside, an empty value: refused, not truncated */
  bad = g_byte_array_new ();
  g_byte_array_append (bad, g_bytes_get_data (frame, NULL), g_bytes_get_size (frame));
  bad->data[bad->len - 4] = 0;
  back = zlt_message_decode (bad->data, bad->len, &consumed, &error);
  g_assert_error (error, ZLT_ERROR, ZLT_ERROR_PROTOCOL);
  g_assert_null (back);
  g_clear_error (&error);
  /* too long to encode */
  {
    g_autofree char *longname = g_strnfill (ZLT_EXT_HOSTNAME_MAX + 1, 'a');
    g_autoptr (GBytes) none = NULL;

    zlt_message_set_hostname (reg, longname);
    none = zlt_message_encode_bytes (reg, &error);
    g_assert_error (error, ZLT_ERROR, ZLT_ERROR_ENCODE);
    g_assert_null (none);
  }
}

/* ---- origins: tiny HTTP and HTTPS services in threads ---- */

typedef struct
{
  GSocketListener *listener;
  GCancellable *cancellable;
  GTlsCertificate *certificate; /* NULL: plain HTTP */
  char *name;
  guint16 port;
  GThread *thread;
  gint n_served;
} Origin;

static gpointer
origin_thread (gpointer data)
{
  Origin *o = data;

  /* bounded: a test makes a handful of requests */
  for (guint i = 0; i < 64; i++)
    {
      g_autoptr (GSocketConnection) conn
          = g_socket_listener_accept (o->listener, NULL, o->cancellable, NULL);
      g_autoptr (GIOStream) tls = NULL;
      GIOStream *stream;
      GString *head = g_string_new (NULL);
      g_autofree char *body = NULL;
      g_autofree char *reply = NULL;
      char c;

      if (conn == NULL)
        {
          g_string_free (head, TRUE);
          break;
        }
      g_socket_set_timeout (g_socket_connection_get_socket (conn), 10);
      stream = G_IO_STREAM (conn);
      if (o->certificate != NULL)
        {
          tls = g_tls_server_connection_new (stream, o->certificate, NULL);
          if (tls == NULL || !g_tls_connection_handshake (G_TLS_CONNECTION (tls), NULL, NULL))
            {
              g_string_free (head, TRUE);
              continue;
            }
          stream = tls;
        }
      while (head->len < 8192 && !g_str_has_suffix (head->str, "\r\n\r\n")
             && g_input_stream_read (g_io_stream_get_input_stream (stream), &c, 1, NULL, NULL) == 1)
        g_string_append_c (head, c);
      body = g_strdup_printf ("origin %s saw %s", o->name,
                              strstr (head->str, "Host:") ? "a host" : "no host");
      reply = g_strdup_printf ("HTTP/1.1 200 OK\r\nContent-Length: %zu\r\nConnection: close\r\n"
                               "\r\n%s",
                               strlen (body), body);
      g_output_stream_write_all (g_io_stream_get_output_stream (stream), reply, strlen (reply),
                                 NULL, NULL, NULL);
      g_io_stream_close (stream, NULL, NULL);
      g_string_free (head, TRUE);
      g_atomic_int_inc (&o->n_served);
    }
  return NULL;
}

static Origin *
origin_new (const char *name, GTlsCertificate *certificate)
{
  Origin *o = g_new0 (Origin, 1);
  g_autoptr (GInetAddress) lo = g_inet_address_new_loopback (G_SOCKET_FAMILY_IPV4);
  g_autoptr (GSocketAddress) addr = g_inet_socket_address_new (lo, 0);
  g_autoptr (GSocketAddress) bound = NULL;
  g_autoptr (GError) error = NULL;

  o->name = g_strdup (name);
  o->listener = g_socket_listener_new ();
  o->cancellable = g_cancellable_new ();
  o->certificate = certificate ? g_object_ref (certificate) : NULL;
  g_socket_listener_add_address (o->listener, addr, G_SOCKET_TYPE_STREAM, G_SOCKET_PROTOCOL_TCP,
                                 NULL, &bound, &error);
  g_assert_no_error (error);
  o->port = g_inet_socket_address_get_port (G_INET_SOCKET_ADDRESS (bound));
  o->thread = g_thread_new ("origin", origin_thread, o);
  return o;
}

static void
origin_free (Origin *o)
{
  g_cancellable_cancel (o->cancellable);
  g_thread_join (o->thread);
  g_socket_listener_close (o->listener);
  g_object_unref (o->listener);
  g_object_unref (o->cancellable);
  g_clear_object (&o->certificate);
  g_free (o->name);
  g_free (o);
}

/* ---- curl ---- */

typedef struct
{
  gboolean done;
  int status;
  char *out;
  char *err;
} Curl;

static void
on_curl_done (GObject *source, GAsyncResult *result, gpointer user_data)
{
  Curl *c = user_data;

  g_subprocess_communicate_utf8_finish (G_SUBPROCESS (source), result, &c->out, &c->err, NULL);
  c->status = g_subprocess_get_exit_status (G_SUBPROCESS (source));
  c->done = TRUE;
}

/* Runs curl on @url with HOST:PORT resolved to 127.0.0.1, the main loop turning (the
 * server and agent run in it); returns curl's exit status. @out: the body, or with
 * -w the status code. */
static int
run_curl (const char *host, guint16 port, const char *url, char **out, char **err)
{
  g_autofree char *resolve = g_strdup_printf ("%s:%u:127.0.0.1", host, port);
  g_autoptr (GSubprocess) p = NULL;
  g_autoptr (GError) error = NULL;
  Curl c = { 0 };

  p = g_subprocess_new (G_SUBPROCESS_FLAGS_STDOUT_PIPE | G_SUBPROCESS_FLAGS_STDERR_PIPE, &error,
                        "curl", "-sS", "-k", "--max-time", "20", "--resolve", resolve, url, "-w",
                        "\n%{http_code}", NULL);
  g_assert_no_error (error);
  g_subprocess_communicate_utf8_async (p, NULL, NULL, on_curl_done, &c);
  ZLT_TEST_WAIT_FOR (c.done, 30000);
  if (out != NULL)
    *out = g_steal_pointer (&c.out);
  if (err != NULL)
    *err = g_steal_pointer (&c.err);
  g_free (c.out);
  g_free (c.err);
  return c.status;
}

/* ---- end to end ---- */

typedef struct
{
  ZltTestHarness h;
  GTlsCertificate *certificate;
  Origin *http_a, *http_b, *tls_a;
} Fixture;

static void
add_hostname_service (ZltTestHarness *h, const char *name, guint16 port, const char *hostname)
{
  g_autofree char *group = g_strconcat ("service:", name, NULL);

  zlt_test_harness_add_service (h, name, port, 0);
  g_key_file_set_string (h->agent_keyfile, group, "hostname", hostname);
}

static ZltService *
wait_service (ZltTestHarness *h, const char *name, ZltServiceState state)
{
  ZltService *service = zlt_tunnel_lookup_service (zlt_agent_get_tunnel (h->agent), name);

  g_assert_nonnull (service);
  ZLT_TEST_WAIT_FOR (zlt_service_get_state (service) == state, 10000);
  return service;
}

static void
fixture_setup (Fixture *f, gconstpointer data)
{
  g_autofree char *cert = NULL, *key = NULL;
  g_autofree char *token = NULL;
  g_autoptr (GError) error = NULL;
  ZltTestHarness *h = &f->h;

  zlt_test_harness_init (h, "29600-29649");
  g_assert_true (zlt_test_make_certificate (h->tmpdir, &cert, &key));
  f->certificate = g_tls_certificate_new_from_files (cert, key, &error);
  g_assert_no_error (error);
  g_key_file_set_string (h->server_keyfile, "server", "http-listen", "127.0.0.1:0");
  g_key_file_set_string (h->server_keyfile, "server", "tls-listen", "127.0.0.1:0");
  g_key_file_set_string (h->server_keyfile, "server", "hostname-domains",
                         "example.test;*.apps.example.test");
  token = zlt_test_harness_add_token (h, "name=apps register=* hostnames=*.apps.example.test");
  zlt_test_harness_set_agent_token (h, token);
  f->http_a = origin_new ("a", NULL);
  f->http_b = origin_new ("b", NULL);
  f->tls_a = origin_new ("secure", f->certificate);
  add_hostname_service (h, "a", f->http_a->port, "a.apps.example.test");
  add_hostname_service (h, "b", f->http_b->port, "b.apps.example.test");
  add_hostname_service (h, "secure", f->tls_a->port, "secure.apps.example.test");
  zlt_test_harness_start_server (h);
  zlt_test_harness_start_agent (h);
  wait_service (h, "a", ZLT_SERVICE_STATE_REGISTERED);
  wait_service (h, "b", ZLT_SERVICE_STATE_REGISTERED);
  wait_service (h, "secure", ZLT_SERVICE_STATE_REGISTERED);
  g_assert_cmpuint (zlt_server_get_http_port (h->server), !=, 0);
  g_assert_cmpuint (zlt_server_get_tls_port (h->server), !=, 0);
}

static void
fixture_teardown (Fixture *f, gconstpointer data)
{
  zlt_test_harness_clear (&f->h);
  origin_free (f->http_a);
  origin_free (f->http_b);
  origin_free (f->tls_a);
  g_clear_object (&f->certificate);
}

static void
test_route_by_host (Fixture *f, gconstpointer data)
{
  guint16 port = zlt_server_get_http_port (f->h.server);
  g_autofree char *url_a = g_strdup_printf ("http://a.apps.example.test:%u/", port);
  g_autofree char *url_b = g_strdup_printf ("http://B.apps.example.test:%u/x", port);
  g_autofree char *out = NULL;

  /* the hostname services have no port of their own */
  g_assert_cmpuint (zlt_service_get_assigned_port (
                        zlt_tunnel_lookup_service (zlt_agent_get_tunnel (f->h.agent), "a")),
                    ==, 0);
  /* both ends know the name (D-Bus shows it as Hostname) */
  g_assert_cmpstr (
      zlt_service_get_hostname (zlt_tunnel_lookup_service (zlt_agent_get_tunnel (f->h.agent), "a")),
      ==, "a.apps.example.test");
  g_assert_cmpstr (
      zlt_service_get_hostname (zlt_server_lookup_hostname (f->h.server, "a.apps.example.test")),
      ==, "a.apps.example.test");
  g_assert_cmpint (run_curl ("a.apps.example.test", port, url_a, &out, NULL), ==, 0);
  g_assert_cmpstr (out, ==, "origin a saw a host\n200");
  g_clear_pointer (&out, g_free);
  g_assert_cmpint (run_curl ("B.apps.example.test", port, url_b, &out, NULL), ==, 0);
  g_assert_cmpstr (out, ==, "origin b saw a host\n200");
  g_clear_pointer (&out, g_free);
  /* the origins count after their close; curl may be done before (Content-Length) */
  ZLT_TEST_WAIT_FOR (g_atomic_int_get (&f->http_a->n_served) == 1
                         && g_atomic_int_get (&f->http_b->n_served) == 1,
                     10000);
}

/* A token that loses the right to a hostname loses the route at once (the token file
 * re-read), not at the next registration. */
static void
test_right_withdrawn (Fixture *f, gconstpointer data)
{
  guint16 port = zlt_server_get_http_port (f->h.server);
  g_autofree char *url = g_strdup_printf ("http://a.apps.example.test:%u/", port);
  g_autofree char *token = NULL;
  g_autofree char *hash = NULL;
  g_autofree char *line = NULL;
  g_autofree char *out = NULL;
  g_autoptr (GError) error = NULL;
  gboolean ok = FALSE;

  /* the agent's token ("apps"), as the fixture wrote it */
  g_file_get_contents (f->h.agent_token_file, &token, NULL, &error);
  g_assert_no_error (error);
  hash = zlt_token_hash_hex (g_strstrip (token));

  g_assert_nonnull (zlt_server_lookup_hostname (f->h.server, "a.apps.example.test"));
  /* the same token, its register right kept, its hostnames narrowed to b.* */
  line = g_strdup_printf ("%s name=apps register=* hostnames=b.apps.example.test\n", hash);
  g_file_set_contents_full (f->h.token_file, line, -1, G_FILE_SET_CONTENTS_CONSISTENT, 0600,
                            &error);
  g_assert_no_error (error);
  g_signal_emit_by_name (zlt_server_get_validator (f->h.server), "reload", &ok);
  g_assert_true (ok);
  ZLT_TEST_WAIT_FOR (zlt_server_lookup_hostname (f->h.server, "a.apps.example.test") == NULL,
                     10000);
  g_assert_cmpint (run_curl ("a.apps.example.test", port, url, &out, NULL), ==, 0);
  g_assert_true (g_str_has_suffix (out, "\n404"));
  g_assert_cmpint (g_atomic_int_get (&f->http_a->n_served), ==, 0);
  /* what the token still may claim stays */
  g_assert_nonnull (zlt_server_lookup_hostname (f->h.server, "b.apps.example.test"));
}

static void
test_route_by_sni (Fixture *f, gconstpointer data)
{
  guint16 port = zlt_server_get_tls_port (f->h.server);
  g_autofree char *url = g_strdup_printf ("https://secure.apps.example.test:%u/", port);
  g_autofree char *out = NULL;

  g_assert_cmpint (run_curl ("secure.apps.example.test", port, url, &out, NULL), ==, 0);
  g_assert_cmpstr (out, ==, "origin secure saw a host\n200");
  /* the origin counts after its close; curl may be done before (Content-Length) */
  ZLT_TEST_WAIT_FOR (g_atomic_int_get (&f->tls_a->n_served) == 1, 10000);
}

/* A proxy in a thread between curl and the shared TLS port: the client's first record
 * (its ClientHello) goes on re-cut into records of 1, 2, 3, then 16 bytes, each
 * header and fragment written on its own with TCP_NODELAY, so the server reads the
 * handshake message in pieces; then everything is relayed both ways as it comes. */
typedef struct
{
  GSocket *listener;
  guint16 port;
  guint16 target;
  guint n_records; /* the records the ClientHello went in */
  GThread *thread;
} SplitProxy;

static gboolean
read_exactly (GSocket *socket, guint8 *buf, gsize n)
{
  for (gsize got = 0; got < n;)
    {
      gssize r = g_socket_receive (socket, (char *) buf + got, n - got, NULL, NULL);

      if (r <= 0)
        return FALSE;
      got += (gsize) r;
    }
  return TRUE;
}

static gboolean
send_all (GSocket *socket, const guint8 *buf, gsize n)
{
  for (gsize sent = 0; sent < n;)
    {
      gssize r = g_socket_send (socket, (const char *) buf + sent, n - sent, NULL, NULL);

      if (r <= 0)
        return FALSE;
      sent += (gsize) r;
    }
  return TRUE;
}

static gpointer
split_proxy_thread (gpointer data)
{
  SplitProxy *p = data;
  g_autoptr (GSocket) client = g_socket_accept (p->listener, NULL, NULL);
  g_autoptr (GSocket) server = NULL;
  g_autoptr (GInetAddress) loopback = g_inet_address_new_loopback (G_SOCKET_FAMILY_IPV4);
  g_autoptr (GSocketAddress) target = g_inet_socket_address_new (loopback, p->target);
  g_autofree guint8 *fragment = NULL;
  guint8 head[5];
  gsize len, pos = 0;
  static const gsize sizes[] = { 1, 2, 3, 16 };

  if (client == NULL)
    return NULL;
  g_socket_set_timeout (client, 20);
  server = g_socket_new (G_SOCKET_FAMILY_IPV4, G_SOCKET_TYPE_STREAM, G_SOCKET_PROTOCOL_TCP, NULL);
  g_socket_set_timeout (server, 20);
  g_socket_set_option (server, IPPROTO_TCP, TCP_NODELAY, 1, NULL);
  if (!g_socket_connect (server, target, NULL, NULL) || !read_exactly (client, head, 5)
      || head[0] != 0x16)
    return NULL;
  len = (gsize) head[3] << 8 | head[4];
  fragment = g_malloc (len);
  if (!read_exactly (client, fragment, len))
    return NULL;
  for (guint i = 0; pos < len; i++)
    {
      gsize n = MIN (sizes[MIN (i, G_N_ELEMENTS (sizes) - 1)], len - pos);
      guint8 rec[5] = { head[0], head[1], head[2], (guint8) (n >> 8), (guint8) n };

      if (!send_all (server, rec, 5) || !send_all (server, fragment + pos, n))
        return NULL;
      pos += n;
      p->n_records++;
    }
  /* the rest as it comes, until either side ends (bounded by the sockets' timeouts) */
  for (guint turns = 0; turns < 10000; turns++)
    {
      GPollFD fds[2]
          = { { g_socket_get_fd (client), G_IO_IN, 0 }, { g_socket_get_fd (server), G_IO_IN, 0 } };
      char buf[16384];

      if (g_poll (fds, 2, 20000) <= 0)
        break;
      for (guint i = 0; i < 2; i++)
        {
          GSocket *from = i == 0 ? client : server;
          GSocket *to = i == 0 ? server : client;
          gssize r;

          if (fds[i].revents == 0)
            continue;
          r = g_socket_receive (from, buf, sizeof buf, NULL, NULL);
          if (r <= 0 || !send_all (to, (const guint8 *) buf, (gsize) r))
            return NULL;
        }
    }
  return NULL;
}

static void
split_proxy_start (SplitProxy *p, guint16 target)
{
  g_autoptr (GInetAddress) loopback = g_inet_address_new_loopback (G_SOCKET_FAMILY_IPV4);
  g_autoptr (GSocketAddress) any = g_inet_socket_address_new (loopback, 0);
  g_autoptr (GSocketAddress) bound = NULL;
  g_autoptr (GError) error = NULL;

  p->target = target;
  p->listener
      = g_socket_new (G_SOCKET_FAMILY_IPV4, G_SOCKET_TYPE_STREAM, G_SOCKET_PROTOCOL_TCP, &error);
  g_assert_no_error (error);
  g_socket_set_timeout (p->listener, 20);
  g_socket_bind (p->listener, any, TRUE, &error);
  g_assert_no_error (error);
  g_socket_listen (p->listener, &error);
  g_assert_no_error (error);
  bound = g_socket_get_local_address (p->listener, &error);
  g_assert_no_error (error);
  p->port = g_inet_socket_address_get_port (G_INET_SOCKET_ADDRESS (bound));
  p->thread = g_thread_new ("split-proxy", split_proxy_thread, p);
}

/* curl's ClientHello cut into many records on its way: the shared TLS port reassembles
 * it, routes by its SNI, and the service (which reassembles it too) answers. */
static void
test_route_by_sni_split (Fixture *f, gconstpointer data)
{
  SplitProxy proxy = { 0 };
  g_autofree char *url = NULL;
  g_autofree char *out = NULL;
  g_autofree char *err = NULL;

  split_proxy_start (&proxy, zlt_server_get_tls_port (f->h.server));
  url = g_strdup_printf ("https://secure.apps.example.test:%u/", proxy.port);
  g_assert_cmpint (run_curl ("secure.apps.example.test", proxy.port, url, &out, &err), ==, 0);
  g_test_message ("curl: %s", err);
  g_assert_cmpstr (out, ==, "origin secure saw a host\n200");
  g_thread_join (proxy.thread);
  g_clear_object (&proxy.listener);
  /* a ClientHello of a few hundred bytes: dozens of records */
  g_test_message ("the ClientHello went in %u records", proxy.n_records);
  g_assert_cmpuint (proxy.n_records, >, 20);
  /* the origin counts once it has answered */
  ZLT_TEST_WAIT_FOR (g_atomic_int_get (&f->tls_a->n_served) == 1, 10000);
}

static void
test_unknown_host (Fixture *f, gconstpointer data)
{
  guint16 http_port = zlt_server_get_http_port (f->h.server);
  guint16 tls_port = zlt_server_get_tls_port (f->h.server);
  g_autofree char *url = g_strdup_printf ("http://nope.apps.example.test:%u/", http_port);
  g_autofree char *surl = g_strdup_printf ("https://nope.apps.example.test:%u/", tls_port);
  g_autofree char *out = NULL, *err = NULL;

  g_assert_cmpint (run_curl ("nope.apps.example.test", http_port, url, &out, NULL), ==, 0);
  g_assert_nonnull (strstr (out, "no tunnel for nope.apps.example.test"));
  g_assert_true (g_str_has_suffix (out, "\n404"));
  g_clear_pointer (&out, g_free);
  /* curl 35: the TLS handshake failed, on the alert */
  g_assert_cmpint (run_curl ("nope.apps.example.test", tls_port, surl, &out, &err), ==, 35);
  g_test_message ("curl: %s", err);
  {
    g_autofree char *lower = g_ascii_strdown (err, -1);
    g_assert_nonnull (strstr (lower, "unrecognized name"));
  }
  g_assert_cmpint (g_atomic_int_get (&f->http_a->n_served), ==, 0);
  g_assert_cmpint (g_atomic_int_get (&f->tls_a->n_served), ==, 0);
}

/* A blocking client in a thread: sends @send, then reads to the end. */
typedef struct
{
  guint16 port;
  GBytes *send;
  GString *got;
  gint64 elapsed_us;
  gboolean done;
} Raw;

static gpointer
raw_thread (gpointer data)
{
  Raw *r = data;
  g_autoptr (GSocketClient) client = g_socket_client_new ();
  g_autoptr (GSocketConnection) conn = NULL;
  gint64 start = g_get_monotonic_time ();
  char buf[1024];
  gssize n;

  g_socket_client_set_timeout (client, 20);
  conn = g_socket_client_connect_to_host (client, "127.0.0.1", r->port, NULL, NULL);
  if (conn != NULL)
    {
      if (r->send != NULL)
        g_output_stream_write_all (g_io_stream_get_output_stream (G_IO_STREAM (conn)),
                                   g_bytes_get_data (r->send, NULL), g_bytes_get_size (r->send),
                                   NULL, NULL, NULL);
      while ((n = g_input_stream_read (g_io_stream_get_input_stream (G_IO_STREAM (conn)), buf,
                                       sizeof buf, NULL, NULL))
             > 0)
        g_string_append_len (r->got, buf, n);
    }
  r->elapsed_us = g_get_monotonic_time () - start;
  g_atomic_int_set (&r->done, TRUE);
  return NULL;
}

static void
raw_run (Raw *r)
{
  GThread *thread;

  r->got = g_string_new (NULL);
  thread = g_thread_new ("raw", raw_thread, r);
  ZLT_TEST_WAIT_FOR (g_atomic_int_get (&r->done), 30000);
  g_thread_join (thread);
}

/* a head past the bound, a client that never speaks and bytes that are not TLS are
 * closed, not kept */
static void
test_bounds (Fixture *f, gconstpointer data)
{
  GString *big = g_string_new ("GET / HTTP/1.1\r\nHost: a.apps.example.test\r\n");
  Raw large = { 0 }, silent = { 0 }, junk = { 0 };

  zlt_server_set_host_sniff_timeout (f->h.server, 500);
  while (big->len < ZLT_SNIFF_HTTP_MAX + 100)
    g_string_append (big, "X-Filler: 0123456789abcdef0123456789abcdef\r\n");
  large.port = zlt_server_get_http_port (f->h.server);
  large.send = g_string_free_to_bytes (big);
  raw_run (&large);
  g_assert_true (g_str_has_prefix (large.got->str, "HTTP/1.1 431"));

  silent.port = zlt_server_get_http_port (f->h.server);
  raw_run (&silent);
  g_assert_cmpuint (silent.got->len, ==, 0);
  /* closed after the sniff timeout, well before the client's own 20 s */
  g_assert_cmpint (silent.elapsed_us, >=, 400 * 1000);
  g_assert_cmpint (silent.elapsed_us, <, 10 * G_USEC_PER_SEC);

  junk.port = zlt_server_get_tls_port (f->h.server);
  junk.send = g_bytes_new_static ("GET / HTTP/1.1\r\n\r\n", 18);
  raw_run (&junk);
  g_assert_cmpuint (junk.got->len, ==, 0);

  /* a ClientHello split over records that stops halfway: closed at the sniff timeout */
  {
    g_autoptr (GByteArray) hello = client_hello ("secure.apps.example.test");
    gsize sizes[1] = { 20 };
    g_autoptr (GByteArray) split = split_records (hello, sizes, 1);
    Raw half = { 0 };

    half.port = zlt_server_get_tls_port (f->h.server);
    half.send = g_bytes_new (split->data, split->len / 2);
    raw_run (&half);
    g_assert_cmpuint (half.got->len, ==, 0);
    g_assert_cmpint (half.elapsed_us, >=, 400 * 1000);
    g_assert_cmpint (half.elapsed_us, <, 10 * G_USEC_PER_SEC);
    g_string_free (half.got, TRUE);
    g_bytes_unref (half.send);
  }
  /* one past both bounds (a record per byte of a 6 KB hello): refused, nothing relayed */
  {
    g_autoptr (GByteArray) padded = client_hello_padded ("secure.apps.example.test", 6000);
    gsize one[1] = { 1 };
    g_autoptr (GByteArray) tiny = split_records (padded, one, 1);
    Raw huge = { 0 };

    huge.port = zlt_server_get_tls_port (f->h.server);
    huge.send = g_bytes_new (tiny->data, tiny->len);
    raw_run (&huge);
    g_assert_cmpuint (huge.got->len, ==, 0);
    g_string_free (huge.got, TRUE);
    g_bytes_unref (huge.send);
  }

  /* none reached a service */
  g_assert_cmpint (g_atomic_int_get (&f->http_a->n_served), ==, 0);
  g_assert_cmpint (g_atomic_int_get (&f->tls_a->n_served), ==, 0);
  for (Raw *r = &large; r != NULL; r = r == &large ? &silent : r == &silent ? &junk : NULL)
    {
      g_string_free (r->got, TRUE);
      g_clear_pointer (&r->send, g_bytes_unref);
    }
}

/* ---- refusals ---- */

static void
test_refused (void)
{
  ZltTestHarness h;
  g_autofree char *token = NULL;
  ZltService *service;

  zlt_test_harness_init (&h, "29650-29699");
  g_key_file_set_string (h.server_keyfile, "server", "http-listen", "127.0.0.1:0");
  g_key_file_set_string (h.server_keyfile, "server", "hostname-domains", "*.apps.example.test");
  /* the right covers other names only */
  token = zlt_test_harness_add_token (&h, "name=other register=* hostnames=*.other.example.test");
  zlt_test_harness_set_agent_token (&h, token);
  add_hostname_service (&h, "a", 9, "a.apps.example.test");
  add_hostname_service (&h, "outside", 9, "x.elsewhere.test");
  zlt_test_harness_start_server (&h);
  zlt_test_harness_start_agent (&h);
  service = wait_service (&h, "a", ZLT_SERVICE_STATE_REFUSED);
  g_assert_nonnull (strstr (zlt_service_get_last_error (service), "not allowed to claim hostname"));
  service = wait_service (&h, "outside", ZLT_SERVICE_STATE_REFUSED);
  g_assert_nonnull (strstr (zlt_service_get_last_error (service), "not under a domain"));
  g_assert_null (zlt_server_lookup_hostname (h.server, "a.apps.example.test"));
  zlt_test_harness_clear (&h);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/hostnames/http-parser", test_http_parser);
  g_test_add_func ("/hostnames/tls-parser", test_tls_parser);
  g_test_add_func ("/hostnames/tls-parser/split", test_tls_parser_split);
  g_test_add_func ("/hostnames/tls-parser/split-bad", test_tls_parser_split_bad);
  g_test_add_func ("/hostnames/patterns", test_patterns);
  g_test_add_func ("/hostnames/register-tag", test_register_tag);
  g_test_add ("/hostnames/route-by-host", Fixture, NULL, fixture_setup, test_route_by_host,
              fixture_teardown);
  g_test_add ("/hostnames/right-withdrawn", Fixture, NULL, fixture_setup, test_right_withdrawn,
              fixture_teardown);
  g_test_add ("/hostnames/route-by-sni", Fixture, NULL, fixture_setup, test_route_by_sni,
              fixture_teardown);
  g_test_add ("/hostnames/route-by-sni/split-records", Fixture, NULL, fixture_setup,
              test_route_by_sni_split, fixture_teardown);
  g_test_add ("/hostnames/unknown-host", Fixture, NULL, fixture_setup, test_unknown_host,
              fixture_teardown);
  g_test_add ("/hostnames/bounds", Fixture, NULL, fixture_setup, test_bounds, fixture_teardown);
  g_test_add_func ("/hostnames/refused", test_refused);
  return g_test_run ();
}
