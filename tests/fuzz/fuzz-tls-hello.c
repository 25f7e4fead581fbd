/* fuzz-tls-hello.c: telling a data connection's ClientHello (core/zlt-tls-stream.c,
 * zlt_tls_is_data_client_hello()), which the websocket listener runs on the first
 * record any client sends, before the handshake.
 *
 * Input: the record, arbitrary bytes. Checks, besides "no crash, no leak, no read past
 * the input": a yes comes only for a handshake record of a TLS version 3.x whose length
 * fits the input, holding a ClientHello whose length fits the record, and whose bytes
 * hold the protocol name ZLT_TLS_DATA_ALPN after its length byte; the answer does not
 * change with bytes past the record. */
#include "config.h"

#include <string.h>

#include "zlt-fuzz.h"

int
LLVMFuzzerInitialize (int *argc, char ***argv)
{
  zlt_fuzz_setup_logging ();
  return 0;
}

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
  gboolean yes = zlt_tls_is_data_client_hello (data, size);
  gsize record_len, hello_len, name_len = strlen (ZLT_TLS_DATA_ALPN);
  gboolean named = FALSE;

  if (size == 0)
    ZLT_FUZZ_CHECK (!zlt_tls_is_data_client_hello (NULL, 0), "NULL taken for a hello");
  if (!yes)
    return 0;
  ZLT_FUZZ_CHECK (size >= 9 && data[0] == 0x16 && data[1] == 3, "not a handshake record");
  record_len = (gsize) data[3] << 8 | data[4];
  ZLT_FUZZ_CHECK (record_len + 5 <= size, "record of %" G_GSIZE_FORMAT " past the input",
                  record_len);
  ZLT_FUZZ_CHECK (data[5] == 1, "handshake type %u is not a ClientHello", data[5]);
  hello_len = (gsize) data[6] << 16 | (gsize) data[7] << 8 | data[8];
  ZLT_FUZZ_CHECK (hello_len + 4 <= record_len, "hello of %" G_GSIZE_FORMAT " past its record",
                  hello_len);
  for (gsize i = 9; i + 1 + name_len <= 9 + hello_len && !named; i++)
    named = data[i] == name_len && memcmp (data + i + 1, ZLT_TLS_DATA_ALPN, name_len) == 0;
  ZLT_FUZZ_CHECK (named, "yes without the protocol's name in the hello");
  /* what follows the record plays no part */
  ZLT_FUZZ_CHECK (zlt_tls_is_data_client_hello (data, record_len + 5),
                  "the answer depends on bytes past the record");
  return 0;
}
