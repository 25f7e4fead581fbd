/* fuzz-host-sniff.c: the shared ports' sniffers (core/zlt-host-sniff.c) on arbitrary
 * bytes: the TLS ClientHello reader, which reassembles the hello from the records it
 * came in, and the HTTP Host reader.
 *
 * Input: byte 0 picks the mode.
 * - bit 0 clear: the rest goes to both parsers as a connection's first bytes.
 * - bit 0 set: the rest is a handshake message (its own 4-byte header included, as the
 *   fuzzer wrote it), which the target frames into TLS records twice: in one record,
 *   and cut into records of (byte 1 & 0x3f) + 1 bytes. Both must give the same verdict
 *   and host: how the records cut the message changes nothing.
 *
 * Checks, besides "no crash, no leak, no read past the input":
 * - the verdict is one of ZltSniffResult; a host comes with FOUND and only then, and it
 *   is a normalized hostname (zlt_hostname_normalize() gives it back unchanged);
 * - a verdict holds: on an input within the bound (ZLT_SNIFF_*_MAX), every prefix gives
 *   "need more" or the whole input's verdict, with the same host. */
#include "config.h"

#include <string.h>

#include "zlt-fuzz.h"
#include "zlt-host-sniff.h"

/* the prefixes checked: a few, so an input costs a few parses, not one per byte */
#define N_PREFIXES 8

typedef ZltSniffResult (*SniffFunc) (const guint8 *data, gsize len, char **host);

int
LLVMFuzzerInitialize (int *argc, char ***argv)
{
  zlt_fuzz_setup_logging ();
  return 0;
}

static ZltSniffResult
sniff_checked (SniffFunc func, const char *what, const guint8 *data, gsize len, char **host)
{
  ZltSniffResult verdict = func (data, len, host);

  ZLT_FUZZ_CHECK (verdict >= ZLT_SNIFF_NEED_MORE && verdict <= ZLT_SNIFF_BAD,
                  "%s: verdict %d out of range", what, verdict);
  ZLT_FUZZ_CHECK ((verdict == ZLT_SNIFF_FOUND) == (*host != NULL), "%s: verdict %d with host %s",
                  what, verdict, *host ? *host : "(none)");
  if (*host != NULL)
    {
      g_autofree char *again = zlt_hostname_normalize (*host, -1);

      ZLT_FUZZ_CHECK (again != NULL && g_str_equal (again, *host),
                      "%s: host “%s” is not a normalized hostname", what, *host);
    }
  return verdict;
}

static void
check_parser (SniffFunc func, const char *what, const guint8 *data, gsize len, gsize bound)
{
  g_autofree char *host = NULL;
  ZltSniffResult verdict = sniff_checked (func, what, data, len, &host);

  /* past the bound the caller never reads: a verdict there may differ from one that
   * more bytes would have given */
  if (len > bound)
    return;
  for (guint i = 1; i <= N_PREFIXES && len > 0; i++)
    {
      gsize cut = len - 1 - (len - 1) * (i - 1) / N_PREFIXES;
      g_autofree char *prefix_host = NULL;
      ZltSniffResult prefix = sniff_checked (func, what, data, cut, &prefix_host);

      if (prefix == ZLT_SNIFF_NEED_MORE)
        continue;
      ZLT_FUZZ_CHECK (prefix == verdict,
                      "%s: %" G_GSIZE_FORMAT " bytes gave %d, all %" G_GSIZE_FORMAT " gave %d",
                      what, cut, prefix, len, verdict);
      ZLT_FUZZ_CHECK (g_strcmp0 (prefix_host, host) == 0,
                      "%s: %" G_GSIZE_FORMAT " bytes found %s, all found %s", what, cut,
                      prefix_host ? prefix_host : "(none)", host ? host : "(none)");
    }
}

/* @message in TLS records of at most @fragment bytes each */
static GByteArray *
frame_records (const guint8 *message, gsize len, gsize fragment)
{
  GByteArray *out = g_byte_array_new ();

  while (len > 0)
    {
      gsize n = MIN (fragment, len);
      guint8 head[5] = { 0x16, 0x03, 0x01, (guint8) (n >> 8), (guint8) n };

      g_byte_array_append (out, head, 5);
      g_byte_array_append (out, message, (guint) n);
      message += n;
      len -= n;
    }
  return out;
}

static void
check_reframed (const guint8 *data, gsize size)
{
  g_autoptr (GByteArray) whole = NULL;
  g_autoptr (GByteArray) cut = NULL;
  g_autofree char *whole_host = NULL;
  g_autofree char *cut_host = NULL;
  ZltSniffResult whole_verdict, cut_verdict;
  gsize fragment;

  if (size < 2)
    return;
  fragment = (gsize) (data[1] & 0x3f) + 1;
  data += 2;
  size -= 2;
  /* one record holds at most 2^14 bytes */
  if (size == 0 || size > 16384)
    return;
  whole = frame_records (data, size, size);
  cut = frame_records (data, size, fragment);
  whole_verdict
      = sniff_checked (zlt_sniff_tls_sni, "tls (one record)", whole->data, whole->len, &whole_host);
  cut_verdict = sniff_checked (zlt_sniff_tls_sni, "tls (records)", cut->data, cut->len, &cut_host);
  /* records so small that their headers pass the raw bound: refused there */
  if (cut->len >= ZLT_SNIFF_TLS_MAX && cut_verdict == ZLT_SNIFF_TOO_LARGE)
    return;
  ZLT_FUZZ_CHECK (whole_verdict == cut_verdict,
                  "one record gave %d, records of %" G_GSIZE_FORMAT " bytes gave %d", whole_verdict,
                  fragment, cut_verdict);
  ZLT_FUZZ_CHECK (g_strcmp0 (whole_host, cut_host) == 0,
                  "one record found %s, records of %" G_GSIZE_FORMAT " bytes found %s",
                  whole_host ? whole_host : "(none)", fragment, cut_host ? cut_host : "(none)");
  check_parser (zlt_sniff_tls_sni, "tls (records)", cut->data, cut->len, ZLT_SNIFF_TLS_MAX - 1);
}

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
  if (size == 0)
    return 0;
  if (data[0] & 1)
    {
      check_reframed (data, size);
      return 0;
    }
  data++;
  size--;
  check_parser (zlt_sniff_tls_sni, "tls", data, size, ZLT_SNIFF_TLS_MAX - 1);
  check_parser (zlt_sniff_http_host, "http", data, size, ZLT_SNIFF_HTTP_MAX - 1);
  return 0;
}
