/* zlt-session.h: one on-demand access session */
#pragma once

#include <gio/gio.h>

#include "zlt-uuid.h"

G_BEGIN_DECLS

#define ZLT_TYPE_SESSION (zlt_session_get_type ())
G_DECLARE_FINAL_TYPE (ZltSession, zlt_session, ZLT, SESSION, GObject)

ZltSession *zlt_session_new (const char *endpoint, const char *local_address,
                             const char *remote_service, guint ttl_seconds);

const ZltUuid *zlt_session_get_id (ZltSession *self);
char *zlt_session_dup_id_string (ZltSession *self);
const char *zlt_session_get_endpoint (ZltSession *self);
const char *zlt_session_get_local_address (ZltSession *self);
void zlt_session_set_local_address (ZltSession *self, const char *local_address);
const char *zlt_session_get_remote_service (ZltSession *self);
gint64 zlt_session_get_created (ZltSession *self);
gint64 zlt_session_get_expires (ZltSession *self);
void zlt_session_set_expires (ZltSession *self, gint64 expires);
gint64 zlt_session_get_remaining_seconds (ZltSession *self);
gboolean zlt_session_is_expired (ZltSession *self);

guint zlt_session_get_active_connections (ZltSession *self);
guint64 zlt_session_get_total_connections (ZltSession *self);
guint64 zlt_session_get_bytes_in (ZltSession *self);
guint64 zlt_session_get_bytes_out (ZltSession *self);

void zlt_session_connection_opened (ZltSession *self);
void zlt_session_connection_closed (ZltSession *self);
void zlt_session_add_bytes (ZltSession *self, guint64 bytes_in, guint64 bytes_out);
void zlt_session_flush_notify (ZltSession *self);

const char *zlt_session_get_last_error (ZltSession *self);
void zlt_session_set_last_error (ZltSession *self, const char *last_error);

G_END_DECLS
