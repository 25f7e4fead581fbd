/* zlt-plugin-loader.c: finds, checks and loads transport and validator plugins */
#include "config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <glib/gi18n-lib.h>
#include <glib/gstdio.h>

#include "zlt-config-private.h"
#include "zlt-error.h"
#include "zlt-plugin-loader.h"
#include "zlt-server-config.h" /* ZLT_SERVER_CONFIG_VALIDATOR_PREFIX */

#define ZLT_PLUGIN_PREFIX "libzlt-"
#define ZLT_PLUGIN_SUFFIX ".so"

struct _ZltPluginLoader
{
  GObject parent_instance;

  char *directory;        /* the search path, as given or built */
  GStrv directories;      /* its entries, in search order */
  guint n_required;       /* the first n must be readable; the built-in one after $ZLT_PLUGIN_DIR
                         may be absent */
  GHashTable *transports; /* name → GTypeClass (a reference held) */
  GHashTable *validators; /* name → GTypeClass */
  GHashTable *skipped;    /* path → reason */
  GPtrArray *loaded;      /* paths */

  /* Types a plugin adds while its entry point runs; committed only when it succeeds. */
  GPtrArray *pending_transports; /* GTypeClass */
  GPtrArray *pending_validators;
};

/**
 * ZltPluginLoader:
 * Finds, checks and loads transport and validator plugins: shared modules named
 * `libzlt-NAME.so`. Each is checked before it is opened (a regular file, owned by root
 * or the current user, not writable by group or others), opened with
 * %G_MODULE_BIND_LOCAL, checked for the ABI version it was built for
 * (%ZLT_PLUGIN_ABI_VERSION) and made resident; then its one entry point registers its
 * types (ZLT_PLUGIN_DEFINE()). A file that fails is skipped, with the reason kept
 * (zlt_plugin_loader_get_skipped()).
 *
 * Hosts with built-in types add them with zlt_plugin_loader_add_transport_type() and
 * zlt_plugin_loader_add_validator_type() instead.
 */

G_DEFINE_FINAL_TYPE (ZltPluginLoader, zlt_plugin_loader, G_TYPE_OBJECT)

/* Modules are resident, so a plugin's static types live as long as the process. Another
 * file with the same name would try to register the same type names again; remember
 * which path each plugin name was loaded from, process-wide. */
G_LOCK_DEFINE_STATIC (resident_modules);
static GHashTable *resident_modules = NULL; /* basename → path */

static void
zlt_plugin_loader_finalize (GObject *object)
{
  ZltPluginLoader *self = ZLT_PLUGIN_LOADER (object);

  g_free (self->directory);
  g_strfreev (self->directories);
  g_hash_table_unref (self->transports);
  g_hash_table_unref (self->validators);
  g_hash_table_unref (self->skipped);
  g_ptr_array_unref (self->loaded);

  G_OBJECT_CLASS (zlt_plugin_loader_parent_class)->finalize (object);
}

static void
zlt_plugin_loader_class_init (ZltPluginLoaderClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);

  object_class->finalize = zlt_plugin_loader_finalize;
}

static void
zlt_plugin_loader_init (ZltPluginLoader *self)
{
  self->transports = g_hash_table_new_full (g_str_hash, g_str_equal, g_free,
                                            (GDestroyNotify) g_type_class_unref);
  self->validators = g_hash_table_new_full (g_str_hash, g_str_equal, g_free,
                                            (GDestroyNotify) g_type_class_unref);
  self->skipped = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, g_free);
  self->loaded = g_ptr_array_new_with_free_func (g_free);
}

/* the non-empty entries of a G_SEARCHPATH_SEPARATOR list, each once, in order */
static void
zlt_plugin_loader_add_path (GPtrArray *dirs, const char *path)
{
  g_auto (GStrv) entries = g_strsplit (path, G_SEARCHPATH_SEPARATOR_S, -1);

  for (guint i = 0; entries[i] != NULL; i++)
    {
      if (entries[i][0] == '\0'
          || g_ptr_array_find_with_equal_func (dirs, entries[i], g_str_equal, NULL))
        continue;
      g_ptr_array_add (dirs, g_strdup (entries[i]));
    }
}

/**
 * zlt_plugin_loader_new:
 * @directory: (nullable): where to look for `libzlt-*.so`: a directory, or several
 *   separated by %G_SEARCHPATH_SEPARATOR (':'), searched in order; NULL means the
 *   directories of `$ZLT_PLUGIN_DIR` (the same form) when set, then the installed
 *   plugin directory
 *
 * A plugin file name found in an earlier directory shadows the same name in later ones.
 *
 * Returns: (transfer full): a loader with no types yet; call zlt_plugin_loader_load_all()
 */
ZltPluginLoader *
zlt_plugin_loader_new (const char *directory)
{
  ZltPluginLoader *self = g_object_new (ZLT_TYPE_PLUGIN_LOADER, NULL);
  g_autoptr (GPtrArray) dirs = g_ptr_array_new_with_free_func (g_free);

  if (directory != NULL)
    zlt_plugin_loader_add_path (dirs, directory);
  else
    {
      const char *env = g_getenv ("ZLT_PLUGIN_DIR");

      if (env != NULL)
        zlt_plugin_loader_add_path (dirs, env);
    }
  self->n_required = dirs->len;
  /* the installed directory comes last, and may be missing in an uninstalled tree */
  if (directory == NULL
      && !g_ptr_array_find_with_equal_func (dirs, ZLT_PLUGINDIR, g_str_equal, NULL))
    g_ptr_array_add (dirs, g_strdup (ZLT_PLUGINDIR));
  if (self->n_required == 0)
    self->n_required = dirs->len;
  g_ptr_array_add (dirs, NULL);
  self->directories = (GStrv) g_ptr_array_free (g_steal_pointer (&dirs), FALSE);
  self->directory = g_strjoinv (G_SEARCHPATH_SEPARATOR_S, self->directories);
  return self;
}

/**
 * zlt_plugin_loader_get_directory:
 *
 * Returns: the search path: the directories, separated by %G_SEARCHPATH_SEPARATOR
 */
const char *
zlt_plugin_loader_get_directory (ZltPluginLoader *self)
{
  g_return_val_if_fail (ZLT_IS_PLUGIN_LOADER (self), NULL);

  return self->directory;
}

/**
 * zlt_plugin_loader_get_directories:
 *
 * Returns: (transfer none): the directories searched for plugins, in order
 */
const char *const *
zlt_plugin_loader_get_directories (ZltPluginLoader *self)
{
  g_return_val_if_fail (ZLT_IS_PLUGIN_LOADER (self), NULL);

  return (const char *const *) self->directories;
}

/**
 * zlt_plugin_loader_get_skipped:
 * Returns: (transfer none) (element-type utf8 utf8): path → reason of every file that
 *   looked like a plugin but was not loaded
 */
GHashTable *
zlt_plugin_loader_get_skipped (ZltPluginLoader *self)
{
  g_return_val_if_fail (ZLT_IS_PLUGIN_LOADER (self), NULL);

  return self->skipped;
}

/**
 * zlt_plugin_loader_get_loaded:
 * Returns: (transfer none) (element-type utf8): paths of the plugins that registered
 */
GPtrArray *
zlt_plugin_loader_get_loaded (ZltPluginLoader *self)
{
  g_return_val_if_fail (ZLT_IS_PLUGIN_LOADER (self), NULL);

  return self->loaded;
}

static const char *
zlt_plugin_loader_class_name (GTypeClass *klass)
{
  if (G_TYPE_CHECK_CLASS_TYPE (klass, ZLT_TYPE_TRANSPORT))
    return ((ZltTransportClass *) klass)->name;
  return ((ZltValidatorClass *) klass)->name;
}

static gboolean
zlt_plugin_loader_pending_has (GPtrArray *pending, const char *name)
{
  if (pending == NULL)
    return FALSE;
  for (guint i = 0; i < pending->len; i++)
    {
      if (g_strcmp0 (zlt_plugin_loader_class_name (g_ptr_array_index (pending, i)), name) == 0)
        return TRUE;
    }
  return FALSE;
}

static gboolean
zlt_plugin_loader_add_type (ZltPluginLoader *self, GType type, GType base, const char *what,
                            GHashTable *table, GPtrArray *pending, GError **error)
{
  g_autoptr (GTypeClass) klass = NULL;
  const char *name;

  if (!g_type_is_a (type, base) || type == base)
    {
      g_set_error (error, ZLT_ERROR, ZLT_ERROR_PLUGIN, _ ("type %s is not a %s"),
                   g_type_name (type), g_type_name (base));
      return FALSE;
    }
  if (G_TYPE_IS_ABSTRACT (type))
    {
      g_set_error (error, ZLT_ERROR, ZLT_ERROR_PLUGIN, _ ("type %s is abstract"),
                   g_type_name (type));
      return FALSE;
    }
  klass = g_type_class_ref (type);
  name = zlt_plugin_loader_class_name (klass);
  if (!zlt_config_plugin_name_is_valid (name))
    {
      g_set_error (error, ZLT_ERROR, ZLT_ERROR_PLUGIN,
                   _ ("type %s has no valid %s name (lowercase letters, digits and '-')"),
                   g_type_name (type), what);
      return FALSE;
    }
  if (g_hash_table_contains (table, name) || zlt_plugin_loader_pending_has (pending, name))
    {
      GTypeClass *other = g_hash_table_lookup (table, name);

      /* the same type again (a second load of the same module) is harmless */
      if (other != NULL && G_TYPE_FROM_CLASS (other) == type)
        return TRUE;
      g_set_error (error, ZLT_ERROR, ZLT_ERROR_DUPLICATE_NAME,
                   _ ("a %s named %s is already registered"), what, name);
      return FALSE;
    }
  if (pending != NULL)
    g_ptr_array_add (pending, g_steal_pointer (&klass));
  else
    g_hash_table_insert (table, g_strdup (name), g_steal_pointer (&klass));
  return TRUE;
}

/**
 * zlt_plugin_loader_add_transport_type:
 * @type: a non-abstract subclass of #ZltTransport whose class sets a name
 *
 * Makes @type available under its class's name. Called from a plugin's entry point, or
 * by a host for built-in types.
 */
gboolean
zlt_plugin_loader_add_transport_type (ZltPluginLoader *self, GType type, GError **error)
{
  g_return_val_if_fail (ZLT_IS_PLUGIN_LOADER (self), FALSE);
  g_return_val_if_fail (error == NULL || *error == NULL, FALSE);

  return zlt_plugin_loader_add_type (self, type, ZLT_TYPE_TRANSPORT, "transport", self->transports,
                                     self->pending_transports, error);
}

/**
 * zlt_plugin_loader_add_validator_type:
 * @type: a non-abstract subclass of #ZltValidator whose class sets a name
 */
gboolean
zlt_plugin_loader_add_validator_type (ZltPluginLoader *self, GType type, GError **error)
{
  g_return_val_if_fail (ZLT_IS_PLUGIN_LOADER (self), FALSE);
  g_return_val_if_fail (error == NULL || *error == NULL, FALSE);

  return zlt_plugin_loader_add_type (self, type, ZLT_TYPE_VALIDATOR, "validator", self->validators,
                                     self->pending_validators, error);
}

static void
zlt_plugin_loader_commit (GHashTable *table, GPtrArray *pending)
{
  for (guint i = 0; i < pending->len; i++)
    {
      GTypeClass *klass = g_ptr_array_index (pending, i);

      g_hash_table_insert (table, g_strdup (zlt_plugin_loader_class_name (klass)),
                           g_type_class_ref (G_TYPE_FROM_CLASS (klass)));
    }
}

/* Everything about the file itself, before any of its code can run. */
static gboolean
zlt_plugin_loader_check_file (const char *path, char **reason)
{
  GStatBuf st;
  uid_t euid = geteuid ();

  if (g_stat (path, &st) != 0)
    {
      int errsv = errno;

      *reason = g_strdup_printf (_ ("cannot stat: %s"), g_strerror (errsv));
      return FALSE;
    }
  if (!S_ISREG (st.st_mode))
    {
      *reason = g_strdup (_ ("not a regular file"));
      return FALSE;
    }
  if (st.st_uid != 0 && st.st_uid != euid)
    {
      *reason = g_strdup_printf (_ ("unsafe owner: uid %u is neither root nor the current user"),
                                 (guint) st.st_uid);
      return FALSE;
    }
  if ((st.st_mode & (S_IWGRP | S_IWOTH)) != 0)
    {
      *reason = g_strdup_printf (_ ("unsafe permissions: writable by group or others (mode %04o)"),
                                 (guint) (st.st_mode & 07777));
      return FALSE;
    }
  return TRUE;
}

static gboolean
zlt_plugin_loader_load_one (ZltPluginLoader *self, const char *path, char **reason)
{
  g_autofree char *basename = g_path_get_basename (path);
  g_autoptr (GPtrArray) transports = NULL;
  g_autoptr (GPtrArray) validators = NULL;
  g_autoptr (GError) error = NULL;
  GModule *module;
  gpointer abi_symbol = NULL;
  gpointer register_symbol = NULL;
  ZltPluginRegisterFunc register_func;
  guint32 abi;
  gboolean ok;

  if (!zlt_plugin_loader_check_file (path, reason))
    return FALSE;

  G_LOCK (resident_modules);
  if (resident_modules != NULL)
    {
      const char *other = g_hash_table_lookup (resident_modules, basename);

      if (other != NULL && g_strcmp0 (other, path) != 0)
        {
          *reason = g_strdup_printf (_ ("a plugin named %s was already loaded from %s"), basename,
                                     other);
          G_UNLOCK (resident_modules);
          return FALSE;
        }
    }
  G_UNLOCK (resident_modules);

  module = g_module_open (path, G_MODULE_BIND_LOCAL | G_MODULE_BIND_LAZY);
  if (module == NULL)
    {
      *reason = g_strdup_printf (_ ("cannot open: %s"), g_module_error ());
      return FALSE;
    }
  if (!g_module_symbol (module, ZLT_PLUGIN_ABI_SYMBOL, &abi_symbol) || abi_symbol == NULL)
    {
      *reason = g_strdup_printf (_ ("not a zlt plugin: no %s symbol"), ZLT_PLUGIN_ABI_SYMBOL);
      g_module_close (module);
      return FALSE;
    }
  abi = *(const guint32 *) abi_symbol;
  if (abi != ZLT_PLUGIN_ABI_VERSION)
    {
      *reason = g_strdup_printf (_ ("incompatible plugin ABI version %u, expected %u"), abi,
                                 (guint) ZLT_PLUGIN_ABI_VERSION);
      g_module_close (module);
      return FALSE;
    }
  if (!g_module_symbol (module, ZLT_PLUGIN_REGISTER_SYMBOL, &register_symbol)
      || register_symbol == NULL)
    {
      *reason = g_strdup_printf (_ ("not a zlt plugin: no %s symbol"), ZLT_PLUGIN_REGISTER_SYMBOL);
      g_module_close (module);
      return FALSE;
    }

  /* From here on the plugin's code runs and may register types: never unload it. */
  g_module_make_resident (module);
  G_LOCK (resident_modules);
  if (resident_modules == NULL)
    resident_modules = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, g_free);
  g_hash_table_replace (resident_modules, g_strdup (basename), g_strdup (path));
  G_UNLOCK (resident_modules);

  register_func = (ZltPluginRegisterFunc) register_symbol;
  self->pending_transports = g_ptr_array_new_with_free_func ((GDestroyNotify) g_type_class_unref);
  self->pending_validators = g_ptr_array_new_with_free_func ((GDestroyNotify) g_type_class_unref);
  ok = register_func (self, &error);
  transports = g_steal_pointer (&self->pending_transports);
  validators = g_steal_pointer (&self->pending_validators);
  if (!ok)
    {
      *reason = g_strdup_printf (_ ("registration failed: %s"),
                                 error != NULL ? error->message : _ ("unknown error"));
      return FALSE;
    }
  if (transports->len == 0 && validators->len == 0)
    {
      *reason = g_strdup (_ ("the plugin registered no types"));
      return FALSE;
    }
  zlt_plugin_loader_commit (self->transports, transports);
  zlt_plugin_loader_commit (self->validators, validators);
  return TRUE;
}

static gint
zlt_plugin_loader_compare_str (gconstpointer a, gconstpointer b)
{
  return g_strcmp0 (*(const char *const *) a, *(const char *const *) b);
}

/* Loads the plugins of one directory, in name order; @seen: basenames found in earlier
 * directories, which shadow these. */
static gboolean
zlt_plugin_loader_load_dir (ZltPluginLoader *self, const char *directory, gboolean required,
                            GHashTable *seen, GError **error)
{
  g_autoptr (GDir) dir = NULL;
  g_autoptr (GPtrArray) names = g_ptr_array_new_with_free_func (g_free);
  g_autoptr (GError) error_local = NULL;
  const char *name;

  dir = g_dir_open (directory, 0, &error_local);
  if (dir == NULL)
    {
      if (!required && g_error_matches (error_local, G_FILE_ERROR, G_FILE_ERROR_NOENT))
        {
          g_debug ("no plugin directory %s", directory);
          return TRUE;
        }
      g_set_error (error, ZLT_ERROR, ZLT_ERROR_PLUGIN, _ ("cannot read plugin directory %s: %s"),
                   directory, error_local->message);
      return FALSE;
    }
  while ((name = g_dir_read_name (dir)) != NULL)
    {
      if (g_str_has_prefix (name, ZLT_PLUGIN_PREFIX) && g_str_has_suffix (name, ZLT_PLUGIN_SUFFIX))
        g_ptr_array_add (names, g_strdup (name));
    }
  g_ptr_array_sort (names, zlt_plugin_loader_compare_str);

  for (guint i = 0; i < names->len; i++)
    {
      const char *basename = g_ptr_array_index (names, i);
      g_autofree char *path = g_build_filename (directory, basename, NULL);
      g_autofree char *reason = NULL;

      if (g_hash_table_contains (seen, basename))
        {
          g_debug ("plugin %s is shadowed by one of an earlier directory", path);
          continue;
        }
      g_hash_table_add (seen, g_strdup (basename));
      if (g_ptr_array_find_with_equal_func (self->loaded, path, g_str_equal, NULL))
        continue;
      if (!zlt_plugin_loader_load_one (self, path, &reason))
        {
          g_message ("skipping plugin %s: %s", path, reason);
          g_hash_table_replace (self->skipped, g_strdup (path), g_steal_pointer (&reason));
          continue;
        }
      g_debug ("loaded plugin %s", path);
      g_hash_table_remove (self->skipped, path);
      g_ptr_array_add (self->loaded, g_steal_pointer (&path));
    }
  return TRUE;
}

/**
 * zlt_plugin_loader_load_all:
 *
 * Loads every `libzlt-*.so` of each directory (zlt_plugin_loader_get_directories()), in
 * name order. A file that fails a check (ownership, mode, ABI version, entry point,
 * registration) is skipped and its reason recorded in zlt_plugin_loader_get_skipped();
 * that never fails the whole load.
 *
 * Returns: FALSE only when a directory cannot be read (the installed directory, when
 *   it only follows those of `$ZLT_PLUGIN_DIR`, may be missing)
 */
gboolean
zlt_plugin_loader_load_all (ZltPluginLoader *self, GError **error)
{
  g_autoptr (GHashTable) seen = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);

  g_return_val_if_fail (ZLT_IS_PLUGIN_LOADER (self), FALSE);
  g_return_val_if_fail (error == NULL || *error == NULL, FALSE);

  if (!g_module_supported ())
    {
      g_set_error_literal (error, ZLT_ERROR, ZLT_ERROR_PLUGIN,
                           _ ("loadable modules are not supported on this system"));
      return FALSE;
    }
  for (guint i = 0; self->directories[i] != NULL; i++)
    {
      if (!zlt_plugin_loader_load_dir (self, self->directories[i], i < self->n_required, seen,
                                       error))
        return FALSE;
    }
  return TRUE;
}

static GTypeClass *
zlt_plugin_loader_lookup (GHashTable *table, const char *name)
{
  return name != NULL ? g_hash_table_lookup (table, name) : NULL;
}

/**
 * zlt_plugin_loader_get_transport_type:
 * Returns: the type registered as @name, or %G_TYPE_INVALID
 */
GType
zlt_plugin_loader_get_transport_type (ZltPluginLoader *self, const char *name)
{
  GTypeClass *klass;

  g_return_val_if_fail (ZLT_IS_PLUGIN_LOADER (self), G_TYPE_INVALID);
  g_return_val_if_fail (name != NULL, G_TYPE_INVALID);

  klass = zlt_plugin_loader_lookup (self->transports, name);
  return klass != NULL ? G_TYPE_FROM_CLASS (klass) : G_TYPE_INVALID;
}

/**
 * zlt_plugin_loader_get_validator_type:
 * @self: a plugin loader
 * @name: a validator name
 *
 * Returns: the type registered as @name, or %G_TYPE_INVALID
 */
GType
zlt_plugin_loader_get_validator_type (ZltPluginLoader *self, const char *name)
{
  GTypeClass *klass;

  g_return_val_if_fail (ZLT_IS_PLUGIN_LOADER (self), G_TYPE_INVALID);
  g_return_val_if_fail (name != NULL, G_TYPE_INVALID);

  klass = zlt_plugin_loader_lookup (self->validators, name);
  return klass != NULL ? G_TYPE_FROM_CLASS (klass) : G_TYPE_INVALID;
}

static GStrv
zlt_plugin_loader_sorted_names (GHashTable *table)
{
  g_autofree const char **keys = (const char **) g_hash_table_get_keys_as_array (table, NULL);
  g_autoptr (GStrvBuilder) builder = g_strv_builder_new ();

  qsort (keys, g_hash_table_size (table), sizeof (char *), zlt_plugin_loader_compare_str);
  for (guint i = 0; keys[i] != NULL; i++)
    g_strv_builder_add (builder, keys[i]);
  return g_strv_builder_end (builder);
}

/**
 * zlt_plugin_loader_list_transports:
 * Returns: (transfer full): the transport names, sorted
 */
GStrv
zlt_plugin_loader_list_transports (ZltPluginLoader *self)
{
  g_return_val_if_fail (ZLT_IS_PLUGIN_LOADER (self), NULL);

  return zlt_plugin_loader_sorted_names (self->transports);
}

/**
 * zlt_plugin_loader_list_validators:
 * Returns: (transfer full): the validator names, sorted
 */
GStrv
zlt_plugin_loader_list_validators (ZltPluginLoader *self)
{
  g_return_val_if_fail (ZLT_IS_PLUGIN_LOADER (self), NULL);

  return zlt_plugin_loader_sorted_names (self->validators);
}

static void
zlt_plugin_loader_set_not_found (GError **error, const char *what, const char *name,
                                 GHashTable *table, const char *directory)
{
  g_auto (GStrv) names = zlt_plugin_loader_sorted_names (table);
  g_autofree char *known = g_strjoinv (", ", names);

  g_set_error (error, ZLT_ERROR, ZLT_ERROR_NOT_FOUND,
               _ ("no %s named %s (available: %s; plugin directory %s)"), what, name,
               known[0] != '\0' ? known : _ ("none"), directory);
}

/**
 * zlt_plugin_loader_new_transport:
 * Returns: (transfer full): a new instance of the transport named @name, or NULL with
 *   %ZLT_ERROR_NOT_FOUND
 */
ZltTransport *
zlt_plugin_loader_new_transport (ZltPluginLoader *self, const char *name, GError **error)
{
  GType type;

  g_return_val_if_fail (ZLT_IS_PLUGIN_LOADER (self), NULL);
  g_return_val_if_fail (name != NULL, NULL);
  g_return_val_if_fail (error == NULL || *error == NULL, NULL);

  type = zlt_plugin_loader_get_transport_type (self, name);
  if (type == G_TYPE_INVALID)
    {
      zlt_plugin_loader_set_not_found (error, "transport", name, self->transports, self->directory);
      return NULL;
    }
  return g_object_new (type, NULL);
}

/**
 * zlt_plugin_loader_new_validator:
 * @config: (nullable): the config the validator reads its group from; NULL = empty
 * @group: (nullable): the validator's group; NULL = `validator:<name>`
 *
 * Makes the validator named @name and configures it (zlt_validator_configure()).
 *
 * Returns: (transfer full): a configured validator, or NULL with @error set
 */
ZltValidator *
zlt_plugin_loader_new_validator (ZltPluginLoader *self, const char *name, GKeyFile *config,
                                 const char *group, GError **error)
{
  return zlt_plugin_loader_new_validator_full (self, name, config, group, NULL, error);
}

/**
 * zlt_plugin_loader_new_validator_full:
 * @config: (nullable): the config the validator reads its group from; NULL = empty
 * @group: (nullable): the validator's group; NULL = `validator:<name>`
 * @config_directory: (nullable): the directory of the config file, where relative paths
 *   in @group start; NULL = the working directory
 *
 * Makes the validator named @name, sets its #ZltValidator:config-directory and
 * configures it (zlt_validator_configure()).
 *
 * Returns: (transfer full): a configured validator, or NULL with @error set
 */
ZltValidator *
zlt_plugin_loader_new_validator_full (ZltPluginLoader *self, const char *name, GKeyFile *config,
                                      const char *group, const char *config_directory,
                                      GError **error)
{
  g_autoptr (ZltValidator) validator = NULL;
  g_autoptr (GKeyFile) config_empty = NULL;
  g_autofree char *group_default = NULL;
  GType type;

  g_return_val_if_fail (ZLT_IS_PLUGIN_LOADER (self), NULL);
  g_return_val_if_fail (name != NULL, NULL);
  g_return_val_if_fail (error == NULL || *error == NULL, NULL);

  type = zlt_plugin_loader_get_validator_type (self, name);
  if (type == G_TYPE_INVALID)
    {
      zlt_plugin_loader_set_not_found (error, "validator", name, self->validators, self->directory);
      return NULL;
    }
  if (config == NULL)
    config = config_empty = g_key_file_new ();
  if (group == NULL)
    group = group_default = g_strconcat (ZLT_SERVER_CONFIG_VALIDATOR_PREFIX, name, NULL);

  validator = g_object_new (type, "config-directory", config_directory, NULL);
  if (!zlt_validator_configure (validator, config, group, error))
    {
      g_prefix_error (error, _ ("validator %s: "), name);
      return NULL;
    }
  return g_steal_pointer (&validator);
}

/**
 * zlt_plugin_loader_new_tunnel_transports:
 * @self: a plugin loader
 * @control: (out) (transfer full): the control channel's transport ("websocket")
 * @tcp: (out) (transfer full): the "tcp" transport
 * @udp: (out) (transfer full) (nullable): the "udp" transport, %NULL when that plugin is
 *   not there
 * @error: return location for a #GError
 *
 * Makes the transports both ends of a tunnel need, as zlt_server_new_full() and
 * zlt_agent_new_full() take them.
 *
 * Returns: %TRUE when the websocket and tcp transports are there
 */
gboolean
zlt_plugin_loader_new_tunnel_transports (ZltPluginLoader *self, ZltControlTransport **control,
                                         ZltTransport **tcp, ZltTransport **udp, GError **error)
{
  g_autoptr (ZltTransport) ws = NULL;
  g_autoptr (ZltTransport) plain = NULL;
  g_autoptr (ZltTransport) datagram = NULL;

  g_return_val_if_fail (ZLT_IS_PLUGIN_LOADER (self), FALSE);
  g_return_val_if_fail (control != NULL && tcp != NULL && udp != NULL, FALSE);

  ws = zlt_plugin_loader_new_transport (self, "websocket", error);
  if (ws == NULL)
    return FALSE;
  if (!ZLT_IS_CONTROL_TRANSPORT (ws))
    {
      g_set_error (error, ZLT_ERROR, ZLT_ERROR_PLUGIN,
                   _ ("transport “websocket” cannot carry control channels"));
      return FALSE;
    }
  plain = zlt_plugin_loader_new_transport (self, "tcp", error);
  if (plain == NULL)
    return FALSE;
  /* optional: without it, UDP services are refused with a clear reason */
  if (zlt_plugin_loader_get_transport_type (self, "udp") != G_TYPE_INVALID)
    {
      datagram = zlt_plugin_loader_new_transport (self, "udp", error);
      if (datagram == NULL)
        return FALSE;
    }
  *control = ZLT_CONTROL_TRANSPORT (g_steal_pointer (&ws));
  *tcp = g_steal_pointer (&plain);
  *udp = g_steal_pointer (&datagram);
  return TRUE;
}
