/* zlt-uuid.h: 16-byte UUIDs as carried on the wire */
#pragma once

#include <glib.h>

#include "zlt-version.h"

G_BEGIN_DECLS

#define ZLT_UUID_SIZE 16
#define ZLT_UUID_STRING_LEN 36

typedef struct
{
  guint8 bytes[ZLT_UUID_SIZE];
} ZltUuid;

ZLT_AVAILABLE_IN_ALL
void zlt_uuid_generate (ZltUuid *uuid);
ZLT_AVAILABLE_IN_ALL
gboolean zlt_uuid_parse (const char *str, ZltUuid *uuid);
ZLT_AVAILABLE_IN_ALL
char *zlt_uuid_to_string (const ZltUuid *uuid);
ZLT_AVAILABLE_IN_ALL
void zlt_uuid_format (const ZltUuid *uuid, char out[ZLT_UUID_STRING_LEN + 1]);
ZLT_AVAILABLE_IN_ALL
gboolean zlt_uuid_equal (const ZltUuid *a, const ZltUuid *b);
ZLT_AVAILABLE_IN_ALL
gboolean zlt_uuid_is_nil (const ZltUuid *uuid);
ZLT_AVAILABLE_IN_ALL
guint zlt_uuid_hash (gconstpointer uuid);
ZLT_AVAILABLE_IN_ALL
gboolean zlt_uuid_equal_func (gconstpointer a, gconstpointer b);

G_END_DECLS
