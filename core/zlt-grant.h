/* zlt-grant.h: what a validator allowed a credential to do */
#pragma once

#include <glib-object.h>

#include "zlt-crypto.h"

G_BEGIN_DECLS

#define ZLT_TYPE_GRANT (zlt_grant_get_type ())
G_DECLARE_FINAL_TYPE (ZltGrant, zlt_grant, ZLT, GRANT, GObject)

ZltGrant *zlt_grant_new (const char *name, const guint8 token_hash[ZLT_HASH_SIZE],
                         const char *const *services, gint64 expiry);

const char *zlt_grant_get_name (ZltGrant *self);
const char *const *zlt_grant_get_services (ZltGrant *self);
gint64 zlt_grant_get_expiry (ZltGrant *self);
const guint8 *zlt_grant_get_token_hash (ZltGrant *self);
gboolean zlt_grant_allows_service (ZltGrant *self, const char *service);
gboolean zlt_grant_is_expired (ZltGrant *self, gint64 now);

G_END_DECLS
