/* test-uuid.c: UUIDs in the wire's byte order */
#include "config.h"

#include "zlayer-tunnel.h"

static void
test_uuid_roundtrip (void)
{
  static const guint8 expected[16] = { 0x55, 0x0e, 0x84, 0x00, 0xe2, 0x9b, 0x41, 0xd4,
                                       0xa7, 0x16, 0x44, 0x66, 0x55, 0x44, 0x00, 0x00 };
  ZltUuid u;
  g_autofree char *s = NULL;

  g_assert_true (zlt_uuid_parse ("550e8400-e29b-41d4-a716-446655440000", &u));
  g_assert_cmpmem (u.bytes, 16, expected, 16);
  s = zlt_uuid_to_string (&u);
  g_assert_cmpstr (s, ==, "550e8400-e29b-41d4-a716-446655440000");
  g_assert_true (zlt_uuid_parse ("550E8400-E29B-41D4-A716-446655440000", &u));
  g_assert_cmpmem (u.bytes, 16, expected, 16);
}

static void
test_uuid_invalid (void)
{
  ZltUuid u;

  g_assert_false (zlt_uuid_parse (NULL, &u));
  g_assert_false (zlt_uuid_parse ("", &u));
  g_assert_false (zlt_uuid_parse ("550e8400e29b41d4a716446655440000", &u));
  g_assert_false (zlt_uuid_parse ("550e8400-e29b-41d4-a716-44665544000g", &u));
  g_assert_false (zlt_uuid_parse ("550e8400-e29b-41d4-a716-4466554400001", &u));
}

static void
test_uuid_generate (void)
{
  ZltUuid a, b;

  zlt_uuid_generate (&a);
  zlt_uuid_generate (&b);
  g_assert_false (zlt_uuid_equal (&a, &b));
  g_assert_false (zlt_uuid_is_nil (&a));
  g_assert_cmpint (a.bytes[6] >> 4, ==, 4); /* version 4 */
  g_assert_cmpint (a.bytes[8] >> 6, ==, 2); /* RFC 4122 variant */
  g_assert_true (zlt_uuid_equal_func (&a, &a));
}

/* Ids are guessed by nobody: they do not come from GRand, whose sequence repeats
 * after the same seed (and can be predicted from earlier output). */
static void
test_uuid_not_from_grand (void)
{
  ZltUuid a, b;
  char text[ZLT_UUID_STRING_LEN + 1];

  g_random_set_seed (1);
  zlt_uuid_generate (&a);
  g_random_set_seed (1);
  zlt_uuid_generate (&b);
  g_assert_false (zlt_uuid_equal (&a, &b));
  zlt_uuid_format (&a, text);
  g_assert_true (g_uuid_string_is_valid (text));
  g_assert_cmpuint (zlt_uuid_hash (&a), ==, zlt_uuid_hash (&a));
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/uuid/roundtrip", test_uuid_roundtrip);
  g_test_add_func ("/uuid/invalid", test_uuid_invalid);
  g_test_add_func ("/uuid/generate", test_uuid_generate);
  g_test_add_func ("/uuid/not-from-grand", test_uuid_not_from_grand);
  return g_test_run ();
}
