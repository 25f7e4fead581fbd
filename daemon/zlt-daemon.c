/* zlt-daemon.c: the roles zlayer-tunneld runs, built from one config file.
 *
 * The file is a GKeyFile: [server] (with its [validator:NAME]) runs the server role,
 * [agent] with its [service:NAME] groups runs the agent role, [daemon] holds the
 * daemon's own settings, [node:NAME] node-to-node tunnels (ZltNodeManager: this node,
 * [daemon] node-name, runs the agent of those that start here and accepts the tokens of
 * those that end here). Reloading applies what can change without a restart: the
 * agent's services (the control channel stays up), [daemon], the validator's tokens and
 * the node tunnels. */
#include "config.h"

#include <glib/gi18n.h>
#include <grp.h>
#include <string.h>

#include "zlt-daemon.h"
#include "zlt-daemon-error.h"
#include "zlt-util.h" /* zlt_config_directory */

struct _ZltDaemon
{
  GObject parent_instance;

  char *config_path;
  ZltPluginLoader *loader;

  ZltServer *server;
  char *server_fingerprint; /* [server] and its validator group, as last read */

  ZltAgent *agent;
  ZltClientConfig *agent_config; /* the agent's own: runtime changes show up in it */
  ZltAccessManager *access;      /* on-demand access with the agent's credential: made at
                                  * the first StartAccess, NULL before */
  char *agent_fingerprint;       /* [agent], as last read */
  GHashTable *file_services;     /* name → ZltServiceConfig: [service:*] as last read */

  ZltNodeManager *nodes;
  GHashTable *file_nodes; /* name → ZltNodeTunnel: [node:*] as last read (refs) */

  char *admin_group;
  char *node_name;      /* as set at start; a change needs a restart */
  char *metrics_listen; /* [daemon] metrics-listen as set at start, NULL: none */
  gboolean running;
};

G_DEFINE_FINAL_TYPE (ZltDaemon, zlt_daemon, G_TYPE_OBJECT)

enum
{
  PROP_0,
  PROP_ADMIN_GROUP,
  PROP_ACCESS_MANAGER,
  N_PROPS
};
static GParamSpec *props[N_PROPS];

static const char *const daemon_keys[] = { "admin-group", "node-name", "metrics-listen", NULL };

/* ---- reading the file ---- */

gboolean
zlt_daemon_keyfile_has_node_groups (GKeyFile *keyfile)
{
  g_auto (GStrv) groups = g_key_file_get_groups (keyfile, NULL);

  for (guint i = 0; groups[i] != NULL; i++)
    if (g_str_has_prefix (groups[i], ZLT_NODE_CONFIG_PREFIX))
      return TRUE;
  return FALSE;
}

/* where relative paths start: the file's directory, or the working directory for a
 * config made on the command line (@path NULL) */
static char *
config_base_dir (const char *path)
{
  return zlt_config_directory (path);
}

/* how errors name the config */
static const char *
config_label (const char *path)
{
  return path != NULL ? path : _ ("the command line");
}

/* [node:*], in file order; NULL with @error set when one is invalid */
static GPtrArray *
parse_node_groups (GKeyFile *keyfile, const char *path, GError **error)
{
  g_autoptr (GPtrArray) nodes = g_ptr_array_new_with_free_func (g_object_unref);
  g_auto (GStrv) groups = g_key_file_get_groups (keyfile, NULL);
  g_autofree char *base_dir = config_base_dir (path);

  for (guint i = 0; groups[i] != NULL; i++)
    {
      ZltNodeTunnel *node;

      if (!g_str_has_prefix (groups[i], ZLT_NODE_CONFIG_PREFIX))
        continue;
      node = zlt_node_tunnel_new_from_keyfile (keyfile, groups[i], base_dir, error);
      if (node == NULL)
        {
          g_prefix_error (error, "%s: ", config_label (path));
          return NULL;
        }
      g_ptr_array_add (nodes, node);
    }
  return g_steal_pointer (&nodes);
}

/* A misspelt group ([sevice:web]) would otherwise be ignored without a word. */
static gboolean
check_groups_known (GKeyFile *keyfile, const char *path, GError **error)
{
  static const char *const names[]
      = { ZLT_SERVER_CONFIG_GROUP, ZLT_CLIENT_CONFIG_GROUP, ZLT_DAEMON_CONFIG_GROUP, NULL };
  static const char *const prefixes[] = { ZLT_CLIENT_CONFIG_SERVICE_PREFIX, ZLT_NODE_CONFIG_PREFIX,
                                          ZLT_SERVER_CONFIG_VALIDATOR_PREFIX, NULL };
  g_auto (GStrv) groups = g_key_file_get_groups (keyfile, NULL);

  for (guint i = 0; groups[i] != NULL; i++)
    {
      gboolean known = g_strv_contains (names, groups[i]);

      for (guint j = 0; !known && prefixes[j] != NULL; j++)
        known
            = g_str_has_prefix (groups[i], prefixes[j]) && groups[i][strlen (prefixes[j])] != '\0';
      if (!known)
        {
          g_set_error (error, ZLT_ERROR, ZLT_ERROR_INVALID_CONFIG,
                       _ ("%s: [%s]: unknown group (known: [server], [validator:NAME], [agent], "
                          "[service:NAME], [node:NAME], [daemon])"),
                       path, groups[i]);
          return FALSE;
        }
    }
  return TRUE;
}

/* Every group known, and at least one role to run. */
static gboolean
check_keyfile_groups (GKeyFile *keyfile, const char *path, GError **error)
{
  if (!check_groups_known (keyfile, config_label (path), error))
    return FALSE;
  if (!g_key_file_has_group (keyfile, ZLT_SERVER_CONFIG_GROUP)
      && !g_key_file_has_group (keyfile, ZLT_CLIENT_CONFIG_GROUP)
      && !zlt_daemon_keyfile_has_node_groups (keyfile))
    {
      g_set_error (error, ZLT_ERROR, ZLT_ERROR_INVALID_CONFIG,
                   _ ("%s: no [server], [agent] or [node:NAME] group: nothing to run"),
                   config_label (path));
      return FALSE;
    }
  return TRUE;
}

static GKeyFile *
read_keyfile (const char *path, GError **error)
{
  g_autoptr (GKeyFile) keyfile = g_key_file_new ();
  g_autoptr (GError) error_local = NULL;

  if (!g_key_file_load_from_file (keyfile, path, G_KEY_FILE_NONE, &error_local))
    {
      g_set_error (error, ZLT_ERROR, ZLT_ERROR_INVALID_CONFIG, _ ("cannot read %s: %s"), path,
                   error_local->message);
      return NULL;
    }
  return g_steal_pointer (&keyfile);
}

/* [daemon]: returns the admin group (NULL when unset) in @admin_group */
static gboolean
parse_daemon_group (GKeyFile *keyfile, const char *path, char **admin_group, char **node_name,
                    char **metrics_listen, GError **error)
{
  g_auto (GStrv) keys = NULL;
  g_autofree char *group = NULL;
  g_autofree char *node = NULL;
  g_autofree char *metrics = NULL;

  *admin_group = NULL;
  *node_name = NULL;
  *metrics_listen = NULL;
  if (!g_key_file_has_group (keyfile, ZLT_DAEMON_CONFIG_GROUP))
    return TRUE;
  keys = g_key_file_get_keys (keyfile, ZLT_DAEMON_CONFIG_GROUP, NULL, NULL);
  for (guint i = 0; keys != NULL && keys[i] != NULL; i++)
    if (!g_strv_contains (daemon_keys, keys[i]))
      {
        g_set_error (error, ZLT_ERROR, ZLT_ERROR_INVALID_CONFIG, _ ("%s: [%s] %s: unknown key"),
                     path, ZLT_DAEMON_CONFIG_GROUP, keys[i]);
        return FALSE;
      }
  group = g_key_file_get_string (keyfile, ZLT_DAEMON_CONFIG_GROUP, "admin-group", NULL);
  if (group != NULL)
    {
      g_strstrip (group);
      if (group[0] == '\0' || strpbrk (group, " \t:,") != NULL)
        {
          g_set_error (error, ZLT_ERROR, ZLT_ERROR_INVALID_CONFIG,
                       _ ("%s: [%s] admin-group: “%s” is not a group name"), path,
                       ZLT_DAEMON_CONFIG_GROUP, group);
          return FALSE;
        }
    }
  node = g_key_file_get_string (keyfile, ZLT_DAEMON_CONFIG_GROUP, "node-name", NULL);
  if (node != NULL)
    {
      g_strstrip (node);
      if (!zlt_node_name_is_valid (node))
        {
          g_set_error (error, ZLT_ERROR, ZLT_ERROR_INVALID_CONFIG,
                       _ ("%s: [%s] node-name: “%s” is not a node name (1-64 letters, digits, "
                          "‘-’, ‘_’ or ‘.’)"),
                       path, ZLT_DAEMON_CONFIG_GROUP, node);
          return FALSE;
        }
    }
  metrics = g_key_file_get_string (keyfile, ZLT_DAEMON_CONFIG_GROUP, "metrics-listen", NULL);
  if (metrics != NULL)
    {
      g_autofree char *host = NULL;
      g_autoptr (GError) parse_error = NULL;
      guint16 port;

      g_strstrip (metrics);
      if (!zlt_net_parse_host_port (metrics, "127.0.0.1", &host, &port, &parse_error))
        {
          g_set_error (error, ZLT_ERROR, ZLT_ERROR_INVALID_CONFIG,
                       _ ("%s: [%s] metrics-listen: %s"), path, ZLT_DAEMON_CONFIG_GROUP,
                       parse_error->message);
          return FALSE;
        }
    }
  *admin_group = g_steal_pointer (&group);
  *node_name = g_steal_pointer (&node);
  *metrics_listen = g_steal_pointer (&metrics);
  return TRUE;
}

/* The keys of @group as text, to notice changes a reload cannot apply. */
static char *
group_fingerprint (GKeyFile *keyfile, const char *group)
{
  g_autoptr (GString) text = g_string_new (NULL);
  g_auto (GStrv) keys = g_key_file_get_keys (keyfile, group, NULL, NULL);

  for (guint i = 0; keys != NULL && keys[i] != NULL; i++)
    {
      g_autofree char *value = g_key_file_get_value (keyfile, group, keys[i], NULL);
      g_string_append_printf (text, "%s=%s\n", keys[i], value ? value : "");
    }
  return g_string_free (g_steal_pointer (&text), FALSE);
}

static char *
server_fingerprint (GKeyFile *keyfile, ZltServerConfig *config)
{
  g_autofree char *server = group_fingerprint (keyfile, ZLT_SERVER_CONFIG_GROUP);
  g_autofree char *validator
      = group_fingerprint (keyfile, zlt_server_config_get_validator_group (config));

  return g_strconcat (server, "\n", validator, NULL);
}

static GHashTable *
service_table (ZltClientConfig *config)
{
  GHashTable *table = g_hash_table_new_full (g_str_hash, g_str_equal, g_free,
                                             (GDestroyNotify) zlt_service_config_free);
  GPtrArray *services = zlt_client_config_get_services (config);

  for (guint i = 0; i < services->len; i++)
    {
      const ZltServiceConfig *sc = g_ptr_array_index (services, i);
      g_hash_table_insert (table, g_strdup (sc->name), zlt_service_config_copy (sc));
    }
  return table;
}

static gboolean
service_config_equal (const ZltServiceConfig *a, const ZltServiceConfig *b)
{
  return g_str_equal (a->name, b->name) && a->protocol == b->protocol
         && g_strcmp0 (a->local_host, b->local_host) == 0 && a->local_port == b->local_port
         && a->remote_port == b->remote_port && a->expose == b->expose;
}

static void
set_admin_group (ZltDaemon *self, const char *admin_group)
{
  if (g_strcmp0 (self->admin_group, admin_group) == 0)
    return;
  g_free (self->admin_group);
  self->admin_group = g_strdup (admin_group);
  if (admin_group != NULL && getgrnam (admin_group) == NULL)
    g_message ("admin group %s does not exist (yet): only root may change anything", admin_group);
  g_object_notify_by_pspec (G_OBJECT (self), props[PROP_ADMIN_GROUP]);
}

ZltPluginLoader *
zlt_daemon_load_plugins (GError **error)
{
  g_autoptr (ZltPluginLoader) loader = zlt_plugin_loader_new (NULL);
  GHashTableIter iter;
  gpointer path, reason;

  if (!zlt_plugin_loader_load_all (loader, error))
    return NULL;
  g_hash_table_iter_init (&iter, zlt_plugin_loader_get_skipped (loader));
  while (g_hash_table_iter_next (&iter, &path, &reason))
    g_message (_ ("skipped plugin %s: %s"), (const char *) path, (const char *) reason);
  return g_steal_pointer (&loader);
}

/* ---- GObject ---- */

static void
zlt_daemon_get_property (GObject *object, guint prop_id, GValue *value, GParamSpec *pspec)
{
  ZltDaemon *self = ZLT_DAEMON (object);

  switch (prop_id)
    {
    case PROP_ADMIN_GROUP:
      g_value_set_string (value, self->admin_group);
      break;
    case PROP_ACCESS_MANAGER:
      g_value_set_object (value, self->access);
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
    }
}

static void
zlt_daemon_dispose (GObject *object)
{
  ZltDaemon *self = ZLT_DAEMON (object);

  zlt_daemon_stop (self);
  g_clear_object (&self->access);
  g_clear_object (&self->nodes);
  g_clear_object (&self->agent);
  g_clear_object (&self->agent_config);
  g_clear_object (&self->server);
  g_clear_object (&self->loader);
  G_OBJECT_CLASS (zlt_daemon_parent_class)->dispose (object);
}

static void
zlt_daemon_finalize (GObject *object)
{
  ZltDaemon *self = ZLT_DAEMON (object);

  g_free (self->config_path);
  g_free (self->server_fingerprint);
  g_free (self->agent_fingerprint);
  g_clear_pointer (&self->file_services, g_hash_table_unref);
  g_clear_pointer (&self->file_nodes, g_hash_table_unref);
  g_free (self->admin_group);
  g_free (self->node_name);
  g_free (self->metrics_listen);
  G_OBJECT_CLASS (zlt_daemon_parent_class)->finalize (object);
}

static void
zlt_daemon_class_init (ZltDaemonClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);

  object_class->get_property = zlt_daemon_get_property;
  object_class->dispose = zlt_daemon_dispose;
  object_class->finalize = zlt_daemon_finalize;

  props[PROP_ADMIN_GROUP]
      = g_param_spec_string ("admin-group", NULL, NULL, NULL,
                             G_PARAM_READABLE | G_PARAM_EXPLICIT_NOTIFY | G_PARAM_STATIC_STRINGS);
  /**
   * ZltDaemon:access-manager:
   * The access sessions' manager; %NULL until the first zlt_daemon_start_access().
   */
  props[PROP_ACCESS_MANAGER]
      = g_param_spec_object ("access-manager", NULL, NULL, ZLT_TYPE_ACCESS_MANAGER,
                             G_PARAM_READABLE | G_PARAM_EXPLICIT_NOTIFY | G_PARAM_STATIC_STRINGS);
  g_object_class_install_properties (object_class, N_PROPS, props);
}

static void
zlt_daemon_init (ZltDaemon *self)
{
  self->file_nodes = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, g_object_unref);
}

/* ---- public API ---- */

/* @path: where @keyfile was read from (its directory anchors relative paths), or NULL
 * for a config made on the command line; @loader: the plugins, or NULL to load them */
static ZltDaemon *
daemon_build (GKeyFile *keyfile, const char *path, ZltPluginLoader *loader, GError **error)
{
  g_autoptr (ZltDaemon) self = NULL;
  g_autofree char *admin_group = NULL;
  g_autofree char *node_name = NULL;
  g_autofree char *metrics_listen = NULL;
  g_autofree char *base_dir = config_base_dir (path);
  g_autoptr (GPtrArray) nodes = NULL;

  if (!check_keyfile_groups (keyfile, path, error)
      || !parse_daemon_group (keyfile, config_label (path), &admin_group, &node_name,
                              &metrics_listen, error))
    return NULL;
  nodes = parse_node_groups (keyfile, path, error);
  if (nodes == NULL)
    return NULL;

  self = g_object_new (ZLT_TYPE_DAEMON, NULL);
  self->config_path = g_strdup (path);
  self->admin_group = g_steal_pointer (&admin_group);
  self->metrics_listen = g_steal_pointer (&metrics_listen);
  self->loader = loader != NULL ? g_object_ref (loader) : zlt_daemon_load_plugins (error);
  if (self->loader == NULL)
    return NULL;

  if (g_key_file_has_group (keyfile, ZLT_SERVER_CONFIG_GROUP))
    {
      g_autoptr (ZltServerConfig) config
          = zlt_server_config_new_from_keyfile_full (keyfile, base_dir, error);

      if (config == NULL)
        {
          g_prefix_error (error, "%s: ", config_label (path));
          return NULL;
        }
      self->server = zlt_server_new (config, self->loader, error);
      if (self->server == NULL)
        return NULL;
      self->server_fingerprint = server_fingerprint (keyfile, config);
    }
  if (g_key_file_has_group (keyfile, ZLT_CLIENT_CONFIG_GROUP))
    {
      self->agent_config = zlt_client_config_new_from_keyfile_full (keyfile, base_dir, error);
      if (self->agent_config == NULL)
        {
          g_prefix_error (error, "%s: ", config_label (path));
          return NULL;
        }
      self->agent = zlt_agent_new (self->agent_config, self->loader, error);
      if (self->agent == NULL)
        return NULL;
      self->agent_fingerprint = group_fingerprint (keyfile, ZLT_CLIENT_CONFIG_GROUP);
      self->file_services = service_table (self->agent_config);
    }

  /* node tunnels: tokens of inbound ones are registered before the server starts */
  self->node_name
      = node_name != NULL ? g_steal_pointer (&node_name) : g_strdup (g_get_host_name ());
  self->nodes = zlt_node_manager_new (self->node_name, self->loader, self->server);
  for (guint i = 0; i < nodes->len; i++)
    {
      ZltNodeTunnel *node = g_ptr_array_index (nodes, i);

      if (!zlt_node_manager_add (self->nodes, node, error))
        {
          g_prefix_error (error, "%s: ", config_label (path));
          return NULL;
        }
      g_hash_table_insert (self->file_nodes, g_strdup (zlt_node_tunnel_get_name (node)),
                           g_object_ref (node));
    }
  return g_steal_pointer (&self);
}

ZltDaemon *
zlt_daemon_new (const char *config_path, GError **error)
{
  g_autoptr (GKeyFile) keyfile = NULL;

  g_return_val_if_fail (config_path != NULL, NULL);
  g_return_val_if_fail (error == NULL || *error == NULL, NULL);

  keyfile = read_keyfile (config_path, error);
  if (keyfile == NULL)
    return NULL;
  return daemon_build (keyfile, config_path, NULL, error);
}

gboolean
zlt_daemon_check_config (const char *config_path, ZltPluginLoader *loader, GError **error)
{
  g_autoptr (GKeyFile) keyfile = NULL;

  g_return_val_if_fail (config_path != NULL, FALSE);
  g_return_val_if_fail (loader == NULL || ZLT_IS_PLUGIN_LOADER (loader), FALSE);
  g_return_val_if_fail (error == NULL || *error == NULL, FALSE);

  keyfile = read_keyfile (config_path, error);
  return keyfile != NULL && zlt_daemon_check_keyfile (keyfile, config_path, loader, error);
}

/* Every [validator:NAME] group names a validator there is and configures it, the ones
 * the server does not use now too: a mistake in one is found before it is switched to,
 * not at that start. */
static gboolean
check_validator_groups (ZltDaemon *check, GKeyFile *keyfile, const char *path, GError **error)
{
  g_auto (GStrv) groups = g_key_file_get_groups (keyfile, NULL);
  g_autofree char *base_dir = config_base_dir (path);
  const char *active = NULL;

  if (check->server != NULL)
    active = zlt_server_config_get_validator_group (zlt_server_get_config (check->server));
  for (guint i = 0; groups[i] != NULL; i++)
    {
      const char *name;
      g_autoptr (ZltValidator) validator = NULL;

      if (!g_str_has_prefix (groups[i], ZLT_SERVER_CONFIG_VALIDATOR_PREFIX)
          || g_strcmp0 (groups[i], active) == 0)
        continue;
      name = groups[i] + strlen (ZLT_SERVER_CONFIG_VALIDATOR_PREFIX);
      validator = zlt_plugin_loader_new_validator_full (check->loader, name, keyfile, groups[i],
                                                        base_dir, error);
      if (validator == NULL)
        {
          g_prefix_error (error, "%s: [%s]: ", config_label (path), groups[i]);
          return FALSE;
        }
    }
  return TRUE;
}

gboolean
zlt_daemon_check_keyfile (GKeyFile *keyfile, const char *config_path, ZltPluginLoader *loader,
                          GError **error)
{
  g_autoptr (ZltDaemon) check = NULL;

  g_return_val_if_fail (keyfile != NULL, FALSE);
  g_return_val_if_fail (loader == NULL || ZLT_IS_PLUGIN_LOADER (loader), FALSE);
  g_return_val_if_fail (error == NULL || *error == NULL, FALSE);

  /* built exactly as at start, then dropped: it never started, so it never bound a port */
  check = daemon_build (keyfile, config_path, loader, error);
  return check != NULL && check_validator_groups (check, keyfile, config_path, error);
}

gboolean
zlt_daemon_start (ZltDaemon *self, GError **error)
{
  g_return_val_if_fail (ZLT_IS_DAEMON (self), FALSE);

  if (self->running)
    return TRUE;
  if (self->server != NULL && !zlt_server_start (self->server, error))
    {
      g_prefix_error (error, _ ("cannot start the server role: "));
      return FALSE;
    }
  if (self->agent != NULL)
    {
      g_message ("agent role: connecting to %s",
                 zlt_client_config_get_server_url (self->agent_config));
      zlt_agent_start (self->agent);
    }
  zlt_node_manager_start (self->nodes);
  self->running = TRUE;
  return TRUE;
}

void
zlt_daemon_stop (ZltDaemon *self)
{
  g_return_if_fail (ZLT_IS_DAEMON (self));

  if (!self->running)
    return;
  self->running = FALSE;
  /* our own clients first: they say goodbye to whichever server they use */
  if (self->access != NULL)
    {
      g_autoptr (GPtrArray) sessions = zlt_access_manager_get_sessions (self->access);

      for (guint i = 0; i < sessions->len; i++)
        zlt_access_manager_stop_session (self->access, g_ptr_array_index (sessions, i), NULL);
      zlt_agent_stop (zlt_access_manager_get_agent (self->access));
    }
  if (self->agent != NULL)
    zlt_agent_stop (self->agent);
  zlt_node_manager_stop (self->nodes);
  if (self->server != NULL)
    zlt_server_stop (self->server);
}

gboolean
zlt_daemon_is_idle (ZltDaemon *self)
{
  g_return_val_if_fail (ZLT_IS_DAEMON (self), TRUE);

  if (self->agent != NULL && zlt_agent_get_n_relays (self->agent) > 0)
    return FALSE;
  if (self->access != NULL && zlt_access_manager_get_n_relays (self->access) > 0)
    return FALSE;
  if (self->nodes != NULL && zlt_node_manager_get_n_relays (self->nodes) > 0)
    return FALSE;
  if (self->server != NULL
      && (zlt_server_get_n_peers (self->server) > 0 || zlt_server_get_n_relays (self->server) > 0
          || zlt_server_get_n_pending (self->server) > 0))
    return FALSE;
  return TRUE;
}

static void
reload_server (ZltDaemon *self, GKeyFile *keyfile)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (ZltServerConfig) config = NULL;
  g_autofree char *fingerprint = NULL;
  ZltValidator *validator;

  if (self->server == NULL)
    {
      if (g_key_file_has_group (keyfile, ZLT_SERVER_CONFIG_GROUP))
        g_message ("reload: the new [server] group takes effect at the next restart");
      return;
    }
  if (!g_key_file_has_group (keyfile, ZLT_SERVER_CONFIG_GROUP))
    g_message ("reload: removing the server role takes effect at the next restart");
  else
    {
      g_autofree char *base_dir = config_base_dir (self->config_path);

      config = zlt_server_config_new_from_keyfile_full (keyfile, base_dir, &error);
      if (config == NULL)
        g_message ("reload: [server] is invalid, the running server keeps its settings: %s",
                   error->message);
      else
        {
          fingerprint = server_fingerprint (keyfile, config);
          if (g_strcmp0 (fingerprint, self->server_fingerprint) != 0)
            g_message ("reload: changes to [server] and [%s] take effect at the next restart",
                       zlt_server_config_get_validator_group (config));
        }
    }

  /* the token file is the one part of the server that reloads */
  validator = zlt_server_get_validator (self->server);
  if (g_signal_lookup ("reload", G_OBJECT_TYPE (validator)) != 0)
    {
      gboolean ok = FALSE;

      g_signal_emit_by_name (validator, "reload", &ok);
      if (ok)
        g_debug ("reload: validator %s re-read its tokens", zlt_validator_get_name (validator));
    }
}

static gboolean
reload_agent (ZltDaemon *self, GKeyFile *keyfile, GError **error)
{
  g_autoptr (ZltClientConfig) config = NULL;
  g_autoptr (GHashTable) services = NULL;
  g_autofree char *fingerprint = NULL;
  g_autofree char *base_dir = NULL;
  GPtrArray *list;
  GHashTableIter iter;
  gpointer name;

  if (self->agent == NULL)
    {
      if (g_key_file_has_group (keyfile, ZLT_CLIENT_CONFIG_GROUP))
        g_message ("reload: the new [agent] group takes effect at the next restart");
      return TRUE;
    }
  if (!g_key_file_has_group (keyfile, ZLT_CLIENT_CONFIG_GROUP))
    {
      g_message ("reload: removing the agent role takes effect at the next restart");
      return TRUE;
    }
  base_dir = config_base_dir (self->config_path);
  config = zlt_client_config_new_from_keyfile_full (keyfile, base_dir, error);
  if (config == NULL)
    return FALSE;
  fingerprint = group_fingerprint (keyfile, ZLT_CLIENT_CONFIG_GROUP);
  if (g_strcmp0 (fingerprint, self->agent_fingerprint) != 0)
    g_message ("reload: changes to [agent] take effect at the next restart");

  services = service_table (config);

  /* removed from the file: unexpose (services exposed over D-Bus stay) */
  g_hash_table_iter_init (&iter, self->file_services);
  while (g_hash_table_iter_next (&iter, &name, NULL))
    if (!g_hash_table_contains (services, name)
        && zlt_client_config_lookup_service (self->agent_config, name) != NULL)
      {
        g_autoptr (GError) error_local = NULL;

        if (zlt_agent_remove_service (self->agent, name, &error_local))
          g_message ("reload: service %s removed", (const char *) name);
        else
          g_message ("reload: cannot remove service %s: %s", (const char *) name,
                     error_local->message);
      }

  /* changed: remove now, add below; in file order so ports are asked for in order */
  list = zlt_client_config_get_services (config);
  for (guint i = 0; i < list->len; i++)
    {
      const ZltServiceConfig *sc = g_ptr_array_index (list, i);
      const ZltServiceConfig *running
          = zlt_client_config_lookup_service (self->agent_config, sc->name);

      if (running != NULL && !service_config_equal (running, sc))
        {
          g_message ("reload: service %s changed", sc->name);
          zlt_agent_remove_service (self->agent, sc->name, NULL);
        }
    }
  for (guint i = 0; i < list->len; i++)
    {
      const ZltServiceConfig *sc = g_ptr_array_index (list, i);
      g_autoptr (GError) error_local = NULL;

      if (zlt_client_config_lookup_service (self->agent_config, sc->name) != NULL)
        continue;
      if (zlt_agent_add_service (self->agent, sc, &error_local))
        g_message ("reload: service %s exposed (local port %u)", sc->name, sc->local_port);
      else
        g_message ("reload: cannot expose service %s: %s", sc->name, error_local->message);
    }

  g_clear_pointer (&self->file_services, g_hash_table_unref);
  self->file_services = g_steal_pointer (&services);
  return TRUE;
}

/* [node:*]: removed ones go (with their token), changed ones are replaced, new ones
 * added; inbound ones that stay re-read their token file. Node tunnels added over D-Bus
 * stay unless the file now defines one of the same name. */
static void
reload_nodes (ZltDaemon *self, GPtrArray *nodes, const char *node_name)
{
  g_autoptr (GHashTable) table
      = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, g_object_unref);
  GHashTableIter iter;
  gpointer name, value;

  if (g_strcmp0 (node_name != NULL ? node_name : g_get_host_name (), self->node_name) != 0)
    g_message ("reload: a new [daemon] node-name takes effect at the next restart");
  for (guint i = 0; i < nodes->len; i++)
    {
      ZltNodeTunnel *node = g_ptr_array_index (nodes, i);
      g_hash_table_insert (table, g_strdup (zlt_node_tunnel_get_name (node)), g_object_ref (node));
    }

  g_hash_table_iter_init (&iter, self->file_nodes);
  while (g_hash_table_iter_next (&iter, &name, &value))
    {
      ZltNodeTunnel *old = value;
      ZltNodeTunnel *running = zlt_node_manager_lookup (self->nodes, name);

      if (running != old || g_hash_table_contains (table, name))
        continue;
      if (zlt_node_manager_remove (self->nodes, name, NULL))
        g_message ("reload: node tunnel %s removed", (const char *) name);
    }

  zlt_node_manager_refresh_tokens (self->nodes);
  for (guint i = 0; i < nodes->len; i++)
    {
      ZltNodeTunnel *node = g_ptr_array_index (nodes, i);
      const char *tname = zlt_node_tunnel_get_name (node);
      ZltNodeTunnel *running = zlt_node_manager_lookup (self->nodes, tname);
      g_autoptr (GError) error_local = NULL;

      if (running != NULL && zlt_node_tunnel_equal (running, node))
        {
          /* the running one stays the file's */
          g_hash_table_insert (table, g_strdup (tname), g_object_ref (running));
          continue;
        }
      if (running != NULL)
        {
          g_message ("reload: node tunnel %s changed", tname);
          zlt_node_manager_remove (self->nodes, tname, NULL);
        }
      if (zlt_node_manager_add (self->nodes, node, &error_local))
        g_message ("reload: node tunnel %s added", tname);
      else
        {
          g_message ("reload: cannot add node tunnel %s: %s", tname, error_local->message);
          g_hash_table_remove (table, tname);
        }
    }
  g_clear_pointer (&self->file_nodes, g_hash_table_unref);
  self->file_nodes = g_steal_pointer (&table);
}

gboolean
zlt_daemon_reload (ZltDaemon *self, GError **error)
{
  g_autoptr (GKeyFile) keyfile = NULL;
  g_autofree char *admin_group = NULL;
  g_autofree char *node_name = NULL;
  g_autofree char *metrics_listen = NULL;
  g_autoptr (GPtrArray) nodes = NULL;

  g_return_val_if_fail (ZLT_IS_DAEMON (self), FALSE);
  g_return_val_if_fail (error == NULL || *error == NULL, FALSE);

  g_message ("reloading %s", self->config_path);
  keyfile = read_keyfile (self->config_path, error);
  /* all or nothing: the file must pass the check a start would make before anything
   * changes */
  if (keyfile == NULL || !zlt_daemon_check_keyfile (keyfile, self->config_path, self->loader, error)
      || !parse_daemon_group (keyfile, self->config_path, &admin_group, &node_name, &metrics_listen,
                              error))
    return FALSE;
  nodes = parse_node_groups (keyfile, self->config_path, error);
  if (nodes == NULL)
    return FALSE;

  set_admin_group (self, admin_group);
  if (g_strcmp0 (metrics_listen, self->metrics_listen) != 0)
    g_message ("reload: a new [daemon] metrics-listen takes effect at the next restart");
  reload_server (self, keyfile);
  if (!reload_agent (self, keyfile, error))
    return FALSE;
  reload_nodes (self, nodes, node_name);
  return TRUE;
}

const char *
zlt_daemon_get_metrics_listen (ZltDaemon *self)
{
  g_return_val_if_fail (ZLT_IS_DAEMON (self), NULL);
  return self->metrics_listen;
}

const char *
zlt_daemon_get_config_path (ZltDaemon *self)
{
  g_return_val_if_fail (ZLT_IS_DAEMON (self), NULL);
  return self->config_path;
}

ZltServer *
zlt_daemon_get_server (ZltDaemon *self)
{
  g_return_val_if_fail (ZLT_IS_DAEMON (self), NULL);
  return self->server;
}

ZltAgent *
zlt_daemon_get_agent (ZltDaemon *self)
{
  g_return_val_if_fail (ZLT_IS_DAEMON (self), NULL);
  return self->agent;
}

ZltClientConfig *
zlt_daemon_get_agent_config (ZltDaemon *self)
{
  g_return_val_if_fail (ZLT_IS_DAEMON (self), NULL);
  return self->agent_config;
}

const char *
zlt_daemon_get_admin_group (ZltDaemon *self)
{
  g_return_val_if_fail (ZLT_IS_DAEMON (self), NULL);
  return self->admin_group;
}

gboolean
zlt_daemon_expose (ZltDaemon *self, const ZltServiceConfig *service, GError **error)
{
  g_return_val_if_fail (ZLT_IS_DAEMON (self), FALSE);
  g_return_val_if_fail (service != NULL, FALSE);

  if (self->agent == NULL)
    {
      g_set_error (error, ZLT_DAEMON_ERROR, ZLT_DAEMON_ERROR_ROLE_NOT_CONFIGURED,
                   _ ("the agent role is not configured (no [agent] group in %s)"),
                   self->config_path);
      return FALSE;
    }
  if (!zlt_agent_add_service (self->agent, service, error))
    return FALSE;
  g_message ("service %s exposed (local port %u)", service->name, service->local_port);
  return TRUE;
}

gboolean
zlt_daemon_unexpose (ZltDaemon *self, const char *name, GError **error)
{
  g_return_val_if_fail (ZLT_IS_DAEMON (self), FALSE);
  g_return_val_if_fail (name != NULL, FALSE);

  if (self->agent == NULL)
    {
      g_set_error (error, ZLT_DAEMON_ERROR, ZLT_DAEMON_ERROR_ROLE_NOT_CONFIGURED,
                   _ ("the agent role is not configured (no [agent] group in %s)"),
                   self->config_path);
      return FALSE;
    }
  if (!zlt_agent_remove_service (self->agent, name, error))
    return FALSE;
  g_message ("service %s removed", name);
  return TRUE;
}

gboolean
zlt_daemon_disconnect_tunnel (ZltDaemon *self, ZltTunnel *tunnel, const char *reason,
                              GError **error)
{
  g_return_val_if_fail (ZLT_IS_DAEMON (self), FALSE);
  g_return_val_if_fail (ZLT_IS_TUNNEL (tunnel), FALSE);

  if (self->server == NULL)
    {
      g_set_error (error, ZLT_DAEMON_ERROR, ZLT_DAEMON_ERROR_ROLE_NOT_CONFIGURED,
                   _ ("the server role is not configured (no [server] group in %s)"),
                   self->config_path);
      return FALSE;
    }
  if (zlt_tunnel_get_role (tunnel) != ZLT_ROLE_SERVER)
    {
      g_set_error (error, ZLT_DAEMON_ERROR, ZLT_DAEMON_ERROR_NOT_SUPPORTED,
                   _ ("the agent's own tunnel cannot be disconnected; stop the daemon instead"));
      return FALSE;
    }
  return zlt_server_disconnect_tunnel (self->server, zlt_tunnel_get_id (tunnel), reason, error);
}

ZltNodeManager *
zlt_daemon_get_node_manager (ZltDaemon *self)
{
  g_return_val_if_fail (ZLT_IS_DAEMON (self), NULL);
  return self->nodes;
}

const char *
zlt_daemon_get_node_name (ZltDaemon *self)
{
  g_return_val_if_fail (ZLT_IS_DAEMON (self), NULL);
  return self->node_name;
}

gboolean
zlt_daemon_add_node_tunnel (ZltDaemon *self, ZltNodeTunnel *tunnel, GError **error)
{
  g_return_val_if_fail (ZLT_IS_DAEMON (self), FALSE);
  g_return_val_if_fail (ZLT_IS_NODE_TUNNEL (tunnel), FALSE);

  if (!zlt_node_manager_add (self->nodes, tunnel, error))
    return FALSE;
  g_message ("node tunnel %s added (from %s to %s)", zlt_node_tunnel_get_name (tunnel),
             zlt_node_tunnel_get_from (tunnel), zlt_node_tunnel_get_to (tunnel));
  return TRUE;
}

gboolean
zlt_daemon_remove_node_tunnel (ZltDaemon *self, const char *name, GError **error)
{
  g_return_val_if_fail (ZLT_IS_DAEMON (self), FALSE);
  g_return_val_if_fail (name != NULL, FALSE);

  if (!zlt_node_manager_remove (self->nodes, name, error))
    return FALSE;
  g_message ("node tunnel %s removed", name);
  return TRUE;
}

ZltAccessManager *
zlt_daemon_get_access_manager (ZltDaemon *self)
{
  g_return_val_if_fail (ZLT_IS_DAEMON (self), NULL);
  return self->access;
}

static ZltAccessManager *
ensure_access_manager (ZltDaemon *self, GError **error)
{
  if (self->access != NULL)
    return self->access;
  if (self->agent == NULL)
    {
      g_set_error (error, ZLT_DAEMON_ERROR, ZLT_DAEMON_ERROR_ROLE_NOT_CONFIGURED,
                   _ ("on-demand access needs the agent role (an [agent] group in %s)"),
                   self->config_path);
      return NULL;
    }
  /* the agent role's server and token are the credential */
  self->access = zlt_access_manager_new (self->agent_config, self->loader, error);
  if (self->access == NULL)
    return NULL;
  g_object_notify_by_pspec (G_OBJECT (self), props[PROP_ACCESS_MANAGER]);
  return self->access;
}

ZltSession *
zlt_daemon_start_access (ZltDaemon *self, const char *service, guint16 local_port,
                         guint ttl_seconds, GError **error)
{
  g_autoptr (GError) error_local = NULL;
  ZltAccessManager *access;
  ZltSession *session;

  g_return_val_if_fail (ZLT_IS_DAEMON (self), NULL);
  g_return_val_if_fail (service != NULL, NULL);
  g_return_val_if_fail (error == NULL || *error == NULL, NULL);

  access = ensure_access_manager (self, error);
  if (access == NULL)
    return NULL;
  session
      = zlt_access_manager_start_session (access, service, local_port, ttl_seconds, &error_local);
  if (session == NULL)
    {
      /* a taken local port is the daemon's PortInUse, not a GIO error */
      if (g_error_matches (error_local, G_IO_ERROR, G_IO_ERROR_ADDRESS_IN_USE))
        {
          g_set_error_literal (error, ZLT_ERROR, ZLT_ERROR_PORT_IN_USE, error_local->message);
          return NULL;
        }
      g_propagate_error (error, g_steal_pointer (&error_local));
      return NULL;
    }
  return session;
}

gboolean
zlt_daemon_stop_access (ZltDaemon *self, ZltSession *session, GError **error)
{
  g_return_val_if_fail (ZLT_IS_DAEMON (self), FALSE);
  g_return_val_if_fail (ZLT_IS_SESSION (session), FALSE);

  if (self->access == NULL)
    {
      g_set_error (error, ZLT_ERROR, ZLT_ERROR_NOT_FOUND, _ ("no such access session"));
      return FALSE;
    }
  return zlt_access_manager_stop_session (self->access, session, error);
}
