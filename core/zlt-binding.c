/* zlt-binding.c: the binding on a standby data connection (PROTOCOL-v2.md §8)
 *
 *     u8  0xB1                 magic: a binding, format 1
 *     16  connection_id        as Connect would have carried it
 *     16  service_id
 *     u8  n                    length of client_addr
 *     n   client_addr          UTF-8, no NUL, as in Connect
 *
 * Format 2 (magic 0xB2, PROTOCOL-v2.md §9) is the same followed by the 37 bytes of an
 * ADDRESSES value; a server sends it only to agents with the ADDRESSES capability.
 *
 * Decoding never trusts the length byte beyond the bytes at hand. */
#include "config.h"

#include <string.h>

#include "zlt-binding.h"
#include "zlt-proxy-header.h"

gsize
zlt_binding_encode (const ZltUuid *connection_id, const ZltUuid *service_id,
                    const char *client_addr, guint8 out[ZLT_BINDING_MAX_SIZE])
{
  return zlt_binding_encode_full (connection_id, service_id, client_addr, NULL, out);
}

gsize
zlt_binding_encode_full (const ZltUuid *connection_id, const ZltUuid *service_id,
                         const char *client_addr, const ZltAddresses *addresses,
                         guint8 out[ZLT_BINDING_MAX_SIZE])
{
  gsize addr_len = client_addr != NULL ? strlen (client_addr) : 0;
  const char *end = NULL;

  g_return_val_if_fail (connection_id != NULL && service_id != NULL && out != NULL, 0);

  /* an address is short; a longer or broken one is cut at the last whole character */
  if (addr_len > ZLT_BINDING_ADDR_MAX)
    addr_len = ZLT_BINDING_ADDR_MAX;
  if (addr_len > 0 && !g_utf8_validate_len (client_addr, addr_len, &end))
    addr_len = (gsize) (end - client_addr);
  out[0] = addresses != NULL ? ZLT_BINDING_MAGIC_ADDRESSES : ZLT_BINDING_MAGIC;
  memcpy (out + 1, connection_id->bytes, ZLT_UUID_SIZE);
  memcpy (out + 1 + ZLT_UUID_SIZE, service_id->bytes, ZLT_UUID_SIZE);
  out[1 + 2 * ZLT_UUID_SIZE] = (guint8) addr_len;
  if (addr_len > 0)
    memcpy (out + ZLT_BINDING_FIXED_SIZE, client_addr, addr_len);
  if (addresses == NULL)
    return ZLT_BINDING_FIXED_SIZE + addr_len;
  zlt_addresses_encode (addresses, out + ZLT_BINDING_FIXED_SIZE + addr_len);
  return ZLT_BINDING_FIXED_SIZE + addr_len + ZLT_ADDRESSES_SIZE;
}

ZltBindingStatus
zlt_binding_decode (const guint8 *data, gsize len, ZltBinding *binding, gsize *consumed)
{
  gsize addr_len, size;
  const char *addr;
  gboolean format2;

  g_return_val_if_fail (data != NULL || len == 0, ZLT_BINDING_INVALID);
  g_return_val_if_fail (binding != NULL && consumed != NULL, ZLT_BINDING_INVALID);

  *consumed = 0;
  /* the first byte tells at once whether this is a binding at all */
  if (len >= 1 && data[0] != ZLT_BINDING_MAGIC && data[0] != ZLT_BINDING_MAGIC_ADDRESSES)
    return ZLT_BINDING_INVALID;
  if (len < ZLT_BINDING_FIXED_SIZE)
    return ZLT_BINDING_INCOMPLETE;
  format2 = data[0] == ZLT_BINDING_MAGIC_ADDRESSES;
  addr_len = data[1 + 2 * ZLT_UUID_SIZE];
  size = ZLT_BINDING_FIXED_SIZE + addr_len + (format2 ? ZLT_ADDRESSES_SIZE : 0);
  if (len < size)
    return ZLT_BINDING_INCOMPLETE;
  addr = (const char *) data + ZLT_BINDING_FIXED_SIZE;
  if (memchr (addr, '\0', addr_len) != NULL || !g_utf8_validate_len (addr, addr_len, NULL))
    return ZLT_BINDING_INVALID;
  memcpy (binding->connection_id.bytes, data + 1, ZLT_UUID_SIZE);
  memcpy (binding->service_id.bytes, data + 1 + ZLT_UUID_SIZE, ZLT_UUID_SIZE);
  memcpy (binding->client_addr, addr, addr_len);
  binding->client_addr[addr_len] = '\0';
  binding->has_addresses = format2;
  memset (&binding->addresses, 0, sizeof binding->addresses);
  if (format2)
    zlt_addresses_decode (data + ZLT_BINDING_FIXED_SIZE + addr_len, &binding->addresses);
  *consumed = size;
  return ZLT_BINDING_COMPLETE;
}
