/* zlt-uuid.c: parse and print UUIDs in the wire's byte order */
#include "config.h"

#include <string.h>

#include "zlt-crypto.h"
#include "zlt-uuid.h"

/**
 * ZltUuid:
 * @bytes: the 16 bytes, in the wire's (big-endian) order
 *
 * A 16-byte UUID as carried on the wire: tunnel, service, connection and client ids.
 */

/**
 * zlt_uuid_generate:
 * @uuid: (out caller-allocates): where the new UUID goes
 *
 * Makes a version 4 UUID from the kernel's CSPRNG. Tunnel and connection ids are
 * guessed by nobody: g_uuid_string_random() draws from a generator whose output can be
 * predicted from enough earlier ids.
 */
void
zlt_uuid_generate (ZltUuid *uuid)
{
  g_return_if_fail (uuid != NULL);
  zlt_random_bytes (uuid->bytes, ZLT_UUID_SIZE);
  uuid->bytes[6] = (uuid->bytes[6] & 0x0f) | 0x40; /* version 4 */
  uuid->bytes[8] = (uuid->bytes[8] & 0x3f) | 0x80; /* RFC 4122 variant */
}

/**
 * zlt_uuid_parse:
 * @str: (nullable): a UUID in the 8-4-4-4-12 hex form
 * @uuid: (out caller-allocates): the parsed UUID
 *
 * Returns: %TRUE when @str is a UUID; @uuid is left as it was otherwise
 */
gboolean
zlt_uuid_parse (const char *str, ZltUuid *uuid)
{
  guint i = 0;

  g_return_val_if_fail (uuid != NULL, FALSE);
  if (str == NULL || !g_uuid_string_is_valid (str))
    return FALSE;
  for (const char *p = str; *p != '\0'; p++)
    {
      int hi, lo;
      if (*p == '-')
        continue;
      hi = g_ascii_xdigit_value (p[0]);
      lo = g_ascii_xdigit_value (p[1]);
      if (hi < 0 || lo < 0 || i >= ZLT_UUID_SIZE)
        return FALSE;
      uuid->bytes[i++] = (guint8) ((hi << 4) | lo);
      p++;
    }
  return i == ZLT_UUID_SIZE;
}

/**
 * zlt_uuid_format: (skip)
 * @uuid: a UUID
 * @out: 37 bytes the text and its NUL go to
 *
 * Writes @uuid in the 8-4-4-4-12 lowercase hex form without allocating.
 */
void
zlt_uuid_format (const ZltUuid *uuid, char out[ZLT_UUID_STRING_LEN + 1])
{
  static const char hex[] = "0123456789abcdef";
  guint o = 0;

  for (guint i = 0; i < ZLT_UUID_SIZE; i++)
    {
      if (i == 4 || i == 6 || i == 8 || i == 10)
        out[o++] = '-';
      out[o++] = hex[uuid->bytes[i] >> 4];
      out[o++] = hex[uuid->bytes[i] & 0xf];
    }
  out[o] = '\0';
}

/**
 * zlt_uuid_to_string:
 * @uuid: a UUID
 *
 * Returns: (transfer full): @uuid in the 8-4-4-4-12 lowercase hex form
 */
char *
zlt_uuid_to_string (const ZltUuid *uuid)
{
  char buf[ZLT_UUID_STRING_LEN + 1];

  g_return_val_if_fail (uuid != NULL, NULL);
  zlt_uuid_format (uuid, buf);
  return g_strdup (buf);
}

/**
 * zlt_uuid_equal:
 * @a: a UUID
 * @b: another UUID
 *
 * Returns: %TRUE when @a and @b are the same UUID
 */
gboolean
zlt_uuid_equal (const ZltUuid *a, const ZltUuid *b)
{
  return memcmp (a->bytes, b->bytes, ZLT_UUID_SIZE) == 0;
}

/**
 * zlt_uuid_is_nil:
 * @uuid: a UUID
 *
 * Returns: %TRUE when every byte of @uuid is zero
 */
gboolean
zlt_uuid_is_nil (const ZltUuid *uuid)
{
  static const ZltUuid nil = { { 0 } };
  return zlt_uuid_equal (uuid, &nil);
}

/**
 * zlt_uuid_hash:
 * @uuid: (type ZltUuid): a UUID
 *
 * A #GHashFunc for tables keyed by #ZltUuid pointers.
 *
 * Returns: the hash of @uuid
 */
guint
zlt_uuid_hash (gconstpointer uuid)
{
  const guint8 *b = ((const ZltUuid *) uuid)->bytes;
  guint h;

  /* random v4 UUIDs: any four bytes are already well mixed */
  memcpy (&h, b + 12, sizeof h);
  return h;
}

/**
 * zlt_uuid_equal_func:
 * @a: (type ZltUuid): a UUID
 * @b: (type ZltUuid): another UUID
 *
 * A #GEqualFunc for tables keyed by #ZltUuid pointers.
 *
 * Returns: %TRUE when @a and @b are the same UUID
 */
gboolean
zlt_uuid_equal_func (gconstpointer a, gconstpointer b)
{
  return zlt_uuid_equal (a, b);
}
