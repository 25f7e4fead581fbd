/* zlt-grant.h: what a validator allowed a credential to do */
#pragma once

#include <glib-object.h>

#include "zlt-version.h"
#include "zlt-crypto.h"

G_BEGIN_DECLS

#define ZLT_TYPE_GRANT (zlt_grant_get_type ())
ZLT_AVAILABLE_IN_ALL
G_DECLARE_FINAL_TYPE (ZltGrant, zlt_grant, ZLT, GRANT, GObject)

/* A service pattern: a service name, "*" (every service) or a prefix followed by '*'
 * ("acme-*"), so one tenant's rights can cover a namespace of names. */
ZLT_AVAILABLE_IN_ALL
gboolean zlt_service_pattern_is_valid (const char *pattern);
ZLT_AVAILABLE_IN_ALL
gboolean zlt_service_pattern_matches (const char *pattern, const char *service);

/* A hostname pattern: a hostname ("app.example.test") or "*." and a hostname (every
 * name under it, at any depth, not itself); hostnames are compared ignoring case. */
ZLT_AVAILABLE_IN_ALL
gboolean zlt_hostname_pattern_is_valid (const char *pattern);
ZLT_AVAILABLE_IN_ALL
gboolean zlt_hostname_pattern_matches (const char *pattern, const char *hostname);
/* Lower-cases each of @patterns in place, as validators store them; the index of the
 * first that is not a hostname pattern, or -1 when all are. */
ZLT_AVAILABLE_IN_ALL
int zlt_hostname_patterns_normalize (char **patterns);

ZLT_AVAILABLE_IN_ALL
ZltGrant *zlt_grant_new (const char *name, const guint8 token_hash[ZLT_HASH_SIZE],
                         const char *const *services, gint64 expiry);
ZLT_AVAILABLE_IN_ALL
ZltGrant *zlt_grant_new_full (const char *name, const guint8 token_hash[ZLT_HASH_SIZE],
                              const char *const *register_patterns,
                              const char *const *reach_patterns, const char *const *owns,
                              gint64 expiry);

ZLT_AVAILABLE_IN_ALL
const char *zlt_grant_get_name (ZltGrant *self);
ZLT_AVAILABLE_IN_ALL
const char *const *zlt_grant_get_services (ZltGrant *self);
ZLT_AVAILABLE_IN_ALL
const char *const *zlt_grant_get_reach (ZltGrant *self);
ZLT_AVAILABLE_IN_ALL
const char *const *zlt_grant_get_owns (ZltGrant *self);
ZLT_AVAILABLE_IN_ALL
gint64 zlt_grant_get_expiry (ZltGrant *self);
ZLT_AVAILABLE_IN_ALL
const guint8 *zlt_grant_get_token_hash (ZltGrant *self);
ZLT_AVAILABLE_IN_ALL
gboolean zlt_grant_may_register (ZltGrant *self, const char *service);
ZLT_AVAILABLE_IN_ALL
gboolean zlt_grant_may_reach (ZltGrant *self, const char *service);
ZLT_AVAILABLE_IN_ALL
gboolean zlt_grant_may_reach_any (ZltGrant *self);
ZLT_AVAILABLE_IN_ALL
gboolean zlt_grant_owns (ZltGrant *self, const char *service);
ZLT_AVAILABLE_IN_ALL
gboolean zlt_grant_is_expired (ZltGrant *self, gint64 now);

/* Hostnames its services may claim on the shared ports: patterns "host" or "*.domain". */
ZLT_AVAILABLE_IN_ALL
void zlt_grant_set_hostnames (ZltGrant *self, const char *const *hostnames);
ZLT_AVAILABLE_IN_ALL
const char *const *zlt_grant_get_hostnames (ZltGrant *self);
ZLT_AVAILABLE_IN_ALL
gboolean zlt_grant_may_claim_hostname (ZltGrant *self, const char *hostname);

/* The largest rate limit in bytes per second (about 9 TB/s; as ZLT_RATE_BUCKET_MAX_RATE). */
#define ZLT_GRANT_RATE_MAX (G_MAXUINT64 / G_USEC_PER_SEC / 2)

/* Bandwidth of all the principal's public connections on a server, per direction (in:
 * toward its services, out: toward their clients), bytes per second; 0: no limit. */
ZLT_AVAILABLE_IN_ALL
void zlt_grant_set_rate_limits (ZltGrant *self, guint64 rate_in, guint64 rate_out);
ZLT_AVAILABLE_IN_ALL
guint64 zlt_grant_get_rate_limit_in (ZltGrant *self);
ZLT_AVAILABLE_IN_ALL
guint64 zlt_grant_get_rate_limit_out (ZltGrant *self);
ZLT_AVAILABLE_IN_ALL
gboolean zlt_grant_parse_rate (const char *text, guint64 *rate);

/* What zlt_grant_may_register() was called before rights were split in two. */
ZLT_AVAILABLE_IN_ALL
gboolean zlt_grant_allows_service (ZltGrant *self, const char *service);

G_END_DECLS
