/* zlt-config-private.c: key file helpers the server and agent configs share */
#include "config.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>

#include <glib/gi18n-lib.h>

#include "zlt-config-private.h"
#include "zlt-error.h"

/* "[group] key: message", or "[group]: message" without a key */
void
zlt_config_error (GError **error, const char *group, const char *key, const char *format, ...)
{
  g_autofree char *msg = NULL;
  va_list args;

  va_start (args, format);
  msg = g_strdup_vprintf (format, args);
  va_end (args);
  if (key != NULL)
    g_set_error (error, ZLT_ERROR, ZLT_ERROR_INVALID_CONFIG, _ ("[%s] %s: %s"), group, key, msg);
  else
    g_set_error (error, ZLT_ERROR, ZLT_ERROR_INVALID_CONFIG, _ ("[%s]: %s"), group, msg);
}

/* NULL and no error when the key is absent */
char *
zlt_config_get_string (GKeyFile *kf, const char *group, const char *key, GError **error)
{
  g_autoptr (GError) error_local = NULL;
  g_autofree char *value = NULL;

  if (!g_key_file_has_key (kf, group, key, NULL))
    return NULL;
  value = g_key_file_get_string (kf, group, key, &error_local);
  if (value == NULL)
    {
      zlt_config_error (error, group, key, "%s", error_local->message);
      return NULL;
    }
  g_strstrip (value);
  if (value[0] == '\0')
    {
      zlt_config_error (error, group, key, _ ("must not be empty"));
      return NULL;
    }
  return g_steal_pointer (&value);
}

gboolean
zlt_config_get_uint (GKeyFile *kf, const char *group, const char *key, guint dflt, guint min,
                     guint max, guint *out, GError **error)
{
  g_autofree char *value = NULL;
  guint64 v;

  *out = dflt;
  value = zlt_config_get_string (kf, group, key, error);
  if (value == NULL)
    return *error == NULL;
  if (!g_ascii_string_to_unsigned (value, 10, min, max, &v, NULL))
    {
      zlt_config_error (error, group, key, _ ("must be a whole number from %u to %u, not ‘%s’"),
                        min, max, value);
      return FALSE;
    }
  *out = (guint) v;
  return TRUE;
}

gboolean
zlt_config_get_double (GKeyFile *kf, const char *group, const char *key, gdouble dflt, gdouble min,
                       gdouble max, gdouble *out, GError **error)
{
  g_autofree char *value = NULL;
  char *end = NULL;
  gdouble v;

  *out = dflt;
  value = zlt_config_get_string (kf, group, key, error);
  if (value == NULL)
    return *error == NULL;
  errno = 0;
  v = g_ascii_strtod (value, &end);
  if (errno != 0 || end == value || *end != '\0' || !isfinite (v) || v < min || v > max)
    {
      zlt_config_error (error, group, key,
                        _ ("must be a number of seconds from %g to %g, not ‘%s’"), min, max, value);
      return FALSE;
    }
  *out = v;
  return TRUE;
}

gboolean
zlt_config_get_bool (GKeyFile *kf, const char *group, const char *key, gboolean dflt, gboolean *out,
                     GError **error)
{
  g_autoptr (GError) error_local = NULL;
  gboolean v;

  *out = dflt;
  if (!g_key_file_has_key (kf, group, key, NULL))
    return TRUE;
  v = g_key_file_get_boolean (kf, group, key, &error_local);
  if (error_local != NULL)
    {
      g_autofree char *value = g_key_file_get_value (kf, group, key, NULL);

      zlt_config_error (error, group, key, _ ("must be true or false, not ‘%s’"), value);
      return FALSE;
    }
  *out = v;
  return TRUE;
}

/* a typo must not silently fall back to a default */
gboolean
zlt_config_check_keys (GKeyFile *kf, const char *group, const char *const *known, GError **error)
{
  g_auto (GStrv) keys = g_key_file_get_keys (kf, group, NULL, NULL);

  for (guint i = 0; keys != NULL && keys[i] != NULL; i++)
    {
      if (!g_strv_contains (known, keys[i]))
        {
          zlt_config_error (error, group, keys[i], _ ("unknown key"));
          return FALSE;
        }
    }
  return TRUE;
}

/* takes @path; relative paths are taken from @base_dir when there is one */
char *
zlt_config_resolve_path (const char *base_dir, char *path)
{
  char *resolved;

  if (path == NULL || base_dir == NULL || g_path_is_absolute (path))
    return path;
  resolved = g_build_filename (base_dir, path, NULL);
  g_free (path);
  return resolved;
}

/* a private copy, so later changes to the caller's key file do not leak in */
GKeyFile *
zlt_config_copy_keyfile (GKeyFile *kf)
{
  g_autofree char *data = g_key_file_to_data (kf, NULL, NULL);
  GKeyFile *copy = g_key_file_new ();

  g_key_file_load_from_data (copy, data, -1, G_KEY_FILE_KEEP_COMMENTS, NULL);
  return copy;
}

/* copies every group of @src except @skip_group and those starting with @skip_prefix */
void
zlt_config_copy_groups (GKeyFile *dest, GKeyFile *src, const char *skip_group,
                        const char *skip_prefix)
{
  g_auto (GStrv) groups = g_key_file_get_groups (src, NULL);

  for (guint i = 0; groups[i] != NULL; i++)
    {
      g_auto (GStrv) keys = NULL;

      if (g_strcmp0 (groups[i], skip_group) == 0
          || (skip_prefix != NULL && g_str_has_prefix (groups[i], skip_prefix)))
        continue;
      keys = g_key_file_get_keys (src, groups[i], NULL, NULL);
      for (guint j = 0; keys != NULL && keys[j] != NULL; j++)
        {
          g_autofree char *value = g_key_file_get_value (src, groups[i], keys[j], NULL);

          g_key_file_set_value (dest, groups[i], keys[j], value);
        }
    }
}

/* plugin (transport and validator) names: 1-32 lowercase letters, digits and '-' */
gboolean
zlt_config_plugin_name_is_valid (const char *name)
{
  gsize len = 0;

  if (name == NULL)
    return FALSE;
  for (const char *p = name; *p != '\0'; p++, len++)
    {
      if (!g_ascii_islower (*p) && !g_ascii_isdigit (*p) && *p != '-')
        return FALSE;
    }
  return len > 0 && len <= ZLT_PLUGIN_NAME_MAX;
}
