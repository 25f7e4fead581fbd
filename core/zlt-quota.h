/* zlt-quota.h: what each token (principal) may hold of the server's shared pools */
#pragma once

#include <glib-object.h>

#include "zlt-version.h"

G_BEGIN_DECLS

/**
 * ZltQuotaKind:
 * @ZLT_QUOTA_TUNNELS: control sessions (agents and access clients)
 * @ZLT_QUOTA_SERVICES: registered services (each public one holds a port)
 * @ZLT_QUOTA_PENDING: connections to the principal's services that wait for a data
 *   connection
 * @ZLT_QUOTA_CONNECTIONS: live relayed connections of the principal's services
 * @ZLT_QUOTA_ACCESS_STREAMS: access streams the principal's access clients hold open
 * @ZLT_QUOTA_STANDBY: standby data connections the principal's agents hold parked
 */
typedef enum
{
  ZLT_QUOTA_TUNNELS,        /*< nick=tunnels >*/
  ZLT_QUOTA_SERVICES,       /*< nick=services >*/
  ZLT_QUOTA_PENDING,        /*< nick=pending >*/
  ZLT_QUOTA_CONNECTIONS,    /*< nick=connections >*/
  ZLT_QUOTA_ACCESS_STREAMS, /*< nick=access-streams >*/
  ZLT_QUOTA_STANDBY,        /*< nick=standby >*/
  ZLT_QUOTA_N_KINDS,        /*< skip >*/
} ZltQuotaKind;

#define ZLT_TYPE_QUOTA (zlt_quota_get_type ())
ZLT_AVAILABLE_IN_ALL
G_DECLARE_FINAL_TYPE (ZltQuota, zlt_quota, ZLT, QUOTA, GObject)

ZLT_AVAILABLE_IN_ALL
ZltQuota *zlt_quota_new (void);
ZLT_AVAILABLE_IN_ALL
void zlt_quota_set_limit (ZltQuota *self, ZltQuotaKind kind, guint limit);
ZLT_AVAILABLE_IN_ALL
guint zlt_quota_get_limit (ZltQuota *self, ZltQuotaKind kind);
ZLT_AVAILABLE_IN_ALL
gboolean zlt_quota_check (ZltQuota *self, const char *principal, ZltQuotaKind kind, GError **error);
ZLT_AVAILABLE_IN_ALL
void zlt_quota_take (ZltQuota *self, const char *principal, ZltQuotaKind kind);
ZLT_AVAILABLE_IN_ALL
gboolean zlt_quota_acquire (ZltQuota *self, const char *principal, ZltQuotaKind kind,
                            GError **error);
ZLT_AVAILABLE_IN_ALL
void zlt_quota_release (ZltQuota *self, const char *principal, ZltQuotaKind kind);
ZLT_AVAILABLE_IN_ALL
guint zlt_quota_get_usage (ZltQuota *self, const char *principal, ZltQuotaKind kind);
ZLT_AVAILABLE_IN_ALL
guint zlt_quota_get_n_principals (ZltQuota *self);

G_END_DECLS
