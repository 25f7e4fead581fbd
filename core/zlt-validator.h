/* zlt-validator.h: plugin base deciding whether a credential may open a tunnel */
#pragma once

#include <gio/gio.h>

#include "zlt-version.h"
#include "zlt-credential.h"
#include "zlt-grant.h"

G_BEGIN_DECLS

#define ZLT_TYPE_VALIDATOR (zlt_validator_get_type ())
ZLT_AVAILABLE_IN_ALL
G_DECLARE_DERIVABLE_TYPE (ZltValidator, zlt_validator, ZLT, VALIDATOR, GObject)

/**
 * ZltValidatorClass:
 * @name: the name configs and the loader use ("token-file"); set in class_init
 * @insecure: TRUE for validators that let anyone in (allow-all); the base class then
 *   refuses to configure them unless the config says `insecure=true`
 * @configure: reads the validator's own group of the config; optional
 * @validate: synchronous check, for validators that need no I/O; the default
 *   @validate_async runs it
 * @validate_async: checks the credential; fails with %ZLT_ERROR_BAD_TOKEN or
 *   %ZLT_ERROR_EXPIRED_TOKEN
 * @validate_finish: when NULL, the base class propagates a #GTask pointer result
 * @add_token: registers a token at runtime (node tunnels); optional
 * @remove_token: forgets a token added at runtime; optional
 * @lookup_owner: the name of the grant that owns @service (see zlt_grant_get_owns()),
 *   or NULL when no token reserves it; optional (then names are owned only by whoever
 *   registered them first)
 */
struct _ZltValidatorClass
{
  GObjectClass parent_class;

  const char *name;
  gboolean insecure;

  gboolean (*configure) (ZltValidator *self, GKeyFile *config, const char *group, GError **error);
  ZltGrant *(*validate) (ZltValidator *self, const ZltCredential *credential, GError **error);
  void (*validate_async) (ZltValidator *self, const ZltCredential *credential,
                          GCancellable *cancellable, GAsyncReadyCallback callback,
                          gpointer user_data);
  ZltGrant *(*validate_finish) (ZltValidator *self, GAsyncResult *result, GError **error);
  gboolean (*add_token) (ZltValidator *self, const char *name, const guint8 hash[ZLT_HASH_SIZE],
                         const char *const *services, gint64 expiry, GError **error);
  gboolean (*remove_token) (ZltValidator *self, const char *name, GError **error);
  char *(*lookup_owner) (ZltValidator *self, const char *service);

  gpointer padding[7];
};

ZLT_AVAILABLE_IN_ALL
const char *zlt_validator_get_name (ZltValidator *self);
ZLT_AVAILABLE_IN_ALL
gboolean zlt_validator_is_insecure (ZltValidator *self);

/* What the validator needs to see of a token: the v2 challenge (the default) or the
 * raw token (bearer, PROTOCOL-v2.md §2a). Set it in init or configure, before the
 * server starts. */
ZLT_AVAILABLE_IN_ALL
ZltCredentialMode zlt_validator_get_credential_mode (ZltValidator *self);
ZLT_AVAILABLE_IN_ALL
void zlt_validator_set_credential_mode (ZltValidator *self, ZltCredentialMode mode);

/* Where relative paths in the validator's group start (the loader sets it before
 * configure from the config file's directory); plugins resolve their paths with
 * zlt_validator_resolve_path(). */
ZLT_AVAILABLE_IN_ALL
const char *zlt_validator_get_config_directory (ZltValidator *self);
ZLT_AVAILABLE_IN_ALL
void zlt_validator_set_config_directory (ZltValidator *self, const char *directory);
ZLT_AVAILABLE_IN_ALL
char *zlt_validator_resolve_path (ZltValidator *self, const char *path);

ZLT_AVAILABLE_IN_ALL
gboolean zlt_validator_configure (ZltValidator *self, GKeyFile *config, const char *group,
                                  GError **error);
ZLT_AVAILABLE_IN_ALL
void zlt_validator_validate_async (ZltValidator *self, const ZltCredential *credential,
                                   GCancellable *cancellable, GAsyncReadyCallback callback,
                                   gpointer user_data);
ZLT_AVAILABLE_IN_ALL
ZltGrant *zlt_validator_validate_finish (ZltValidator *self, GAsyncResult *result, GError **error);
ZLT_AVAILABLE_IN_ALL
gboolean zlt_validator_add_token (ZltValidator *self, const char *name,
                                  const guint8 hash[ZLT_HASH_SIZE], const char *const *services,
                                  gint64 expiry, GError **error);
ZLT_AVAILABLE_IN_ALL
gboolean zlt_validator_remove_token (ZltValidator *self, const char *name, GError **error);
ZLT_AVAILABLE_IN_ALL
char *zlt_validator_lookup_owner (ZltValidator *self, const char *service);

G_END_DECLS
