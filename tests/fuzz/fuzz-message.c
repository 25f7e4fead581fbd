/* fuzz-message.c: the frame decoder (core/zlt-message.c) on arbitrary bytes.
 *
 * Checks, besides "no crash, no leak, no read past the input":
 * - a failed decode says why (a ZLT_ERROR with a message) and consumes nothing;
 * - a decoded frame consumed between the header size and the input's length, and
 *   passes zlt_fuzz_check_roundtrip();
 * - an empty input is also tried as NULL, which is what an empty GBytes gives;
 * - zlt_message_decode_all() agrees with decoding frame by frame: it succeeds exactly
 *   when every frame back to back decodes and they fill the input, with the same
 *   messages; and the re-encoded frames, concatenated, decode_all to them again. */
#include "config.h"

#include "zlt-fuzz.h"

int
LLVMFuzzerInitialize (int *argc, char ***argv)
{
  zlt_fuzz_setup_logging ();
  return 0;
}

static void
check_error (const GError *error, const char *what)
{
  ZLT_FUZZ_CHECK (error != NULL, "%s failed without an error", what);
  ZLT_FUZZ_CHECK (error->domain == ZLT_ERROR, "%s failed with an error of domain %s", what,
                  g_quark_to_string (error->domain));
  ZLT_FUZZ_CHECK (error->message != NULL && error->message[0] != '\0',
                  "%s failed with an empty message", what);
}

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (GError) all_error = NULL;
  g_autoptr (GPtrArray) all = NULL;
  g_autoptr (GPtrArray) one_by_one
      = g_ptr_array_new_with_free_func ((GDestroyNotify) zlt_message_free);
  gboolean each_decodes = TRUE;
  gsize pos = 0;

  /* what an empty GBytes gives (g_bytes_get_data): the API allows it */
  if (size == 0)
    data = NULL;

  /* frame by frame, as a reader of a stream would */
  do
    {
      gsize consumed = 12345;
      ZltMessage *msg
          = zlt_message_decode (pos > 0 ? data + pos : data, size - pos, &consumed, &error);

      if (msg == NULL)
        {
          check_error (error, "decode");
          ZLT_FUZZ_CHECK (consumed == 0, "a failed decode consumed %" G_GSIZE_FORMAT " bytes",
                          consumed);
          g_clear_error (&error);
          each_decodes = FALSE;
          break;
        }
      ZLT_FUZZ_CHECK (error == NULL, "decode succeeded and set an error");
      ZLT_FUZZ_CHECK (
          consumed >= ZLT_HEADER_SIZE && consumed <= size - pos && consumed <= ZLT_MAX_MESSAGE_SIZE,
          "decode consumed %" G_GSIZE_FORMAT " of %" G_GSIZE_FORMAT " bytes", consumed, size - pos);
      zlt_fuzz_check_roundtrip (msg, consumed);
      g_ptr_array_add (one_by_one, msg);
      pos += consumed;
    }
  while (pos < size);

  all = zlt_message_decode_all (data, size, &all_error);
  if (all == NULL)
    {
      check_error (all_error, "decode_all");
      ZLT_FUZZ_CHECK (!each_decodes, "decode_all failed (%s) where each frame decodes",
                      all_error->message);
      return 0;
    }
  ZLT_FUZZ_CHECK (each_decodes, "decode_all succeeded where frame %u does not decode",
                  one_by_one->len + 1);
  ZLT_FUZZ_CHECK (all->len == one_by_one->len && all->len > 0,
                  "decode_all found %u frames, one by one %u", all->len, one_by_one->len);
  {
    g_autoptr (GByteArray) encoded = g_byte_array_new ();
    g_autoptr (GPtrArray) again = NULL;

    for (guint i = 0; i < all->len; i++)
      {
        ZLT_FUZZ_CHECK (
            zlt_fuzz_message_equal (g_ptr_array_index (all, i), g_ptr_array_index (one_by_one, i)),
            "decode_all and decode disagree on frame %u", i + 1);
        ZLT_FUZZ_CHECK (zlt_message_encode (g_ptr_array_index (all, i), encoded, &error),
                        "frame %u does not encode: %s", i + 1, error->message);
      }
    again = zlt_message_decode_all (encoded->data, encoded->len, &error);
    ZLT_FUZZ_CHECK (again != NULL, "the re-encoded frames do not decode_all: %s", error->message);
    ZLT_FUZZ_CHECK (again->len == all->len, "%u frames re-encoded decode to %u", all->len,
                    again->len);
    for (guint i = 0; i < all->len; i++)
      ZLT_FUZZ_CHECK (
          zlt_fuzz_message_equal (g_ptr_array_index (all, i), g_ptr_array_index (again, i)),
          "frame %u changed in a decode_all round trip", i + 1);
  }
  return 0;
}
