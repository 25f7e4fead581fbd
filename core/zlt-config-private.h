/* zlt-config-private.h: key file helpers the server and agent configs share; not installed */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

#define ZLT_PLUGIN_NAME_MAX 32

G_GNUC_INTERNAL
void zlt_config_error (GError **error, const char *group, const char *key, const char *format, ...)
    G_GNUC_PRINTF (4, 5);

/* In these, @error is never NULL: a missing key (NULL or the default, no error) and a bad
 * one (error set) are told apart by it. Values are stripped; empty ones are refused. */
G_GNUC_INTERNAL
char *zlt_config_get_string (GKeyFile *kf, const char *group, const char *key, GError **error);
G_GNUC_INTERNAL
gboolean zlt_config_get_uint (GKeyFile *kf, const char *group, const char *key, guint dflt,
                              guint min, guint max, guint *out, GError **error);
G_GNUC_INTERNAL
gboolean zlt_config_get_double (GKeyFile *kf, const char *group, const char *key, gdouble dflt,
                                gdouble min, gdouble max, gdouble *out, GError **error);
G_GNUC_INTERNAL
gboolean zlt_config_get_bool (GKeyFile *kf, const char *group, const char *key, gboolean dflt,
                              gboolean *out, GError **error);
G_GNUC_INTERNAL
gboolean zlt_config_check_keys (GKeyFile *kf, const char *group, const char *const *known,
                                GError **error);

G_GNUC_INTERNAL
char *zlt_config_resolve_path (const char *base_dir, char *path);
G_GNUC_INTERNAL
GKeyFile *zlt_config_copy_keyfile (GKeyFile *kf);
G_GNUC_INTERNAL
void zlt_config_copy_groups (GKeyFile *dest, GKeyFile *src, const char *skip_group,
                             const char *skip_prefix);
G_GNUC_INTERNAL
gboolean zlt_config_plugin_name_is_valid (const char *name);

G_END_DECLS
