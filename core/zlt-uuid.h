/* zlt-uuid.h: 16-byte UUIDs as carried on the wire */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

#define ZLT_UUID_SIZE 16
#define ZLT_UUID_STRING_LEN 36

typedef struct
{
  guint8 bytes[ZLT_UUID_SIZE];
} ZltUuid;

void zlt_uuid_generate (ZltUuid *uuid);
gboolean zlt_uuid_parse (const char *str, ZltUuid *uuid);
char *zlt_uuid_to_string (const ZltUuid *uuid);
void zlt_uuid_format (const ZltUuid *uuid, char out[ZLT_UUID_STRING_LEN + 1]);
gboolean zlt_uuid_equal (const ZltUuid *a, const ZltUuid *b);
gboolean zlt_uuid_is_nil (const ZltUuid *uuid);
guint zlt_uuid_hash (gconstpointer uuid);
gboolean zlt_uuid_equal_func (gconstpointer a, gconstpointer b);

G_END_DECLS
