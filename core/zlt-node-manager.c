/* zlt-node-manager.c: the node-to-node tunnels of one node.
 *
 * Holds the ZltNodeTunnel of every definition, activated for this node: outbound ones
 * run their agent while the manager runs, inbound ones keep their token registered
 * with the server's validator and follow the server's tunnel that authenticated with
 * it (found by its token name, "node:NAME"). */
#include "config.h"

#include <glib/gi18n-lib.h>
#include <string.h>

#include "zlt-error.h"
#include "zlt-node-manager.h"

struct _ZltNodeManager
{
  GObject parent_instance;

  char *node_name;
  ZltPluginLoader *loader;
  ZltValidator *validator; /* nullable: no server role */
  ZltRegistry *registry;   /* nullable: no server role */
  GPtrArray *tunnels;      /* ZltNodeTunnel (refs), in the order added */
  gboolean running;
};

/**
 * ZltNodeManager:
 * The node-to-node tunnels of one node. A node tunnel ([class@Zlt.NodeTunnel], a
 * `[node:NAME]` group) names two nodes: the node called `from` runs an agent that
 * exposes one of its local services as "node-NAME" on the server of the node called
 * `to`, which accepts the tunnel's token (the same token file on both nodes) under the
 * name "node:NAME", allowed to register "node-NAME" only.
 *
 * Give every node the same definitions: each node's manager runs its own side of each
 * (outbound: an agent; inbound: the token, added to its server's validator with
 * [method@Zlt.Validator.add_token], and the status of the server's tunnel for it) and
 * ignores the tunnels it is neither end of.
 */

G_DEFINE_FINAL_TYPE (ZltNodeManager, zlt_node_manager, G_TYPE_OBJECT)

enum
{
  SIGNAL_NODE_ADDED,
  SIGNAL_NODE_REMOVED,
  N_SIGNALS
};
static guint signals[N_SIGNALS];

static gint
find_tunnel (ZltNodeManager *self, const char *name)
{
  for (guint i = 0; i < self->tunnels->len; i++)
    if (g_str_equal (zlt_node_tunnel_get_name (g_ptr_array_index (self->tunnels, i)), name))
      return (gint) i;
  return -1;
}

/* ---- inbound status: the server's tunnels with our tokens ---- */

/* the inbound node tunnel whose token @tunnel authenticated with, if any */
static ZltNodeTunnel *
inbound_for (ZltNodeManager *self, ZltTunnel *tunnel)
{
  const char *token_name = zlt_tunnel_get_token_name (tunnel);
  ZltNodeTunnel *node;

  if (token_name == NULL || !g_str_has_prefix (token_name, ZLT_NODE_TOKEN_PREFIX))
    return NULL;
  node = zlt_node_manager_lookup (self, token_name + strlen (ZLT_NODE_TOKEN_PREFIX));
  if (node == NULL || zlt_node_tunnel_get_direction (node) != ZLT_NODE_DIRECTION_INBOUND)
    return NULL;
  return node;
}

static void
follow_if_ours (ZltNodeManager *self, ZltTunnel *tunnel)
{
  ZltNodeTunnel *node = inbound_for (self, tunnel);

  /* a newer session of the same node replaces the older one */
  if (node != NULL)
    zlt_node_tunnel_follow_tunnel (node, tunnel);
}

static void
on_token_name (GObject *tunnel, GParamSpec *pspec, gpointer user_data)
{
  follow_if_ours (user_data, ZLT_TUNNEL (tunnel));
}

static void
on_registry_tunnel_added (ZltRegistry *registry, ZltTunnel *tunnel, gpointer user_data)
{
  ZltNodeManager *self = user_data;

  /* the server names the token once it has listed the tunnel */
  g_signal_connect_object (tunnel, "notify::token-name", G_CALLBACK (on_token_name), self, 0);
  follow_if_ours (self, tunnel);
}

static void
on_registry_tunnel_removed (ZltRegistry *registry, ZltTunnel *tunnel, gpointer user_data)
{
  ZltNodeManager *self = user_data;

  g_signal_handlers_disconnect_by_func (tunnel, on_token_name, self);
  for (guint i = 0; i < self->tunnels->len; i++)
    {
      ZltNodeTunnel *node = g_ptr_array_index (self->tunnels, i);

      if (zlt_node_tunnel_get_followed_tunnel (node) == tunnel)
        zlt_node_tunnel_follow_tunnel (node, NULL);
    }
}

/* ---- GObject ---- */

static void
zlt_node_manager_dispose (GObject *object)
{
  ZltNodeManager *self = ZLT_NODE_MANAGER (object);

  zlt_node_manager_stop (self);
  if (self->registry != NULL)
    {
      g_autoptr (GPtrArray) tunnels = zlt_registry_get_tunnels (self->registry);

      for (guint i = 0; i < tunnels->len; i++)
        g_signal_handlers_disconnect_by_func (g_ptr_array_index (tunnels, i), on_token_name, self);
      g_signal_handlers_disconnect_by_data (self->registry, self);
      g_clear_object (&self->registry);
    }
  /* forgets the tokens of inbound tunnels */
  while (self->tunnels->len > 0)
    {
      g_autoptr (ZltNodeTunnel) node
          = g_ptr_array_steal_index (self->tunnels, self->tunnels->len - 1);

      zlt_node_tunnel_deactivate (node);
    }
  g_clear_object (&self->validator);
  g_clear_object (&self->loader);
  G_OBJECT_CLASS (zlt_node_manager_parent_class)->dispose (object);
}

static void
zlt_node_manager_finalize (GObject *object)
{
  ZltNodeManager *self = ZLT_NODE_MANAGER (object);

  g_ptr_array_unref (self->tunnels);
  g_free (self->node_name);
  G_OBJECT_CLASS (zlt_node_manager_parent_class)->finalize (object);
}

static void
zlt_node_manager_class_init (ZltNodeManagerClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);

  object_class->dispose = zlt_node_manager_dispose;
  object_class->finalize = zlt_node_manager_finalize;

  /**
   * ZltNodeManager::node-added:
   * @self: the node manager
   * @tunnel: the new #ZltNodeTunnel, already activated
   */
  signals[SIGNAL_NODE_ADDED]
      = g_signal_new ("node-added", G_TYPE_FROM_CLASS (klass), G_SIGNAL_RUN_LAST, 0, NULL, NULL,
                      NULL, G_TYPE_NONE, 1, ZLT_TYPE_NODE_TUNNEL);
  /**
   * ZltNodeManager::node-removed:
   * @self: the node manager
   * @tunnel: the #ZltNodeTunnel, already stopped
   */
  signals[SIGNAL_NODE_REMOVED]
      = g_signal_new ("node-removed", G_TYPE_FROM_CLASS (klass), G_SIGNAL_RUN_LAST, 0, NULL, NULL,
                      NULL, G_TYPE_NONE, 1, ZLT_TYPE_NODE_TUNNEL);
}

static void
zlt_node_manager_init (ZltNodeManager *self)
{
  self->tunnels = g_ptr_array_new_with_free_func (g_object_unref);
}

/* ---- public API ---- */

/**
 * zlt_node_manager_new:
 * @node_name: this node's name
 * @loader: a plugin loader that has loaded its plugins (the outbound agents' transports)
 * @server: (nullable): this node's server, whose validator accepts the tokens of inbound
 *   tunnels and whose registry shows their status; %NULL for a node without one (then
 *   inbound tunnels cannot be added)
 *
 * Returns: (transfer full): a new node manager, not started
 */
ZltNodeManager *
zlt_node_manager_new (const char *node_name, ZltPluginLoader *loader, ZltServer *server)
{
  ZltNodeManager *self;

  g_return_val_if_fail (node_name != NULL, NULL);
  g_return_val_if_fail (ZLT_IS_PLUGIN_LOADER (loader), NULL);
  g_return_val_if_fail (server == NULL || ZLT_IS_SERVER (server), NULL);

  self = g_object_new (ZLT_TYPE_NODE_MANAGER, NULL);
  self->node_name = g_strdup (node_name);
  self->loader = g_object_ref (loader);
  if (server != NULL)
    {
      g_autoptr (GPtrArray) tunnels = NULL;

      self->validator = g_object_ref (zlt_server_get_validator (server));
      self->registry = g_object_ref (zlt_server_get_registry (server));
      g_signal_connect (self->registry, "tunnel-added", G_CALLBACK (on_registry_tunnel_added),
                        self);
      g_signal_connect (self->registry, "tunnel-removed", G_CALLBACK (on_registry_tunnel_removed),
                        self);
      tunnels = zlt_registry_get_tunnels (self->registry);
      for (guint i = 0; i < tunnels->len; i++)
        on_registry_tunnel_added (self->registry, g_ptr_array_index (tunnels, i), self);
    }
  return self;
}

/**
 * zlt_node_manager_get_node_name:
 * @self: a node manager
 *
 * Returns: this node's name
 */
const char *
zlt_node_manager_get_node_name (ZltNodeManager *self)
{
  g_return_val_if_fail (ZLT_IS_NODE_MANAGER (self), NULL);
  return self->node_name;
}

/**
 * zlt_node_manager_add:
 * @self: a node manager
 * @tunnel: a node tunnel definition
 * @error: return location for a #GError
 *
 * Activates @tunnel for this node (see zlt_node_tunnel_activate()) and keeps it;
 * %ZLT_ERROR_DUPLICATE_NAME when the name is taken. Its agent starts at once when the
 * manager runs. Emits #ZltNodeManager::node-added.
 *
 * Returns: %TRUE when the tunnel was added
 */
gboolean
zlt_node_manager_add (ZltNodeManager *self, ZltNodeTunnel *tunnel, GError **error)
{
  g_return_val_if_fail (ZLT_IS_NODE_MANAGER (self), FALSE);
  g_return_val_if_fail (ZLT_IS_NODE_TUNNEL (tunnel), FALSE);
  g_return_val_if_fail (error == NULL || *error == NULL, FALSE);

  if (find_tunnel (self, zlt_node_tunnel_get_name (tunnel)) >= 0)
    {
      g_set_error (error, ZLT_ERROR, ZLT_ERROR_DUPLICATE_NAME,
                   _ ("there is already a node tunnel called %s"),
                   zlt_node_tunnel_get_name (tunnel));
      return FALSE;
    }
  if (!zlt_node_tunnel_activate (tunnel, self->node_name, self->loader, self->validator, error))
    return FALSE;
  g_ptr_array_add (self->tunnels, g_object_ref (tunnel));
  switch (zlt_node_tunnel_get_direction (tunnel))
    {
    case ZLT_NODE_DIRECTION_OUTBOUND:
      g_debug ("node tunnel %s: to %s through %s", zlt_node_tunnel_get_name (tunnel),
               zlt_node_tunnel_get_to (tunnel), zlt_node_tunnel_get_server (tunnel));
      break;
    case ZLT_NODE_DIRECTION_INBOUND:
      {
        g_autoptr (GPtrArray) tunnels = zlt_registry_get_tunnels (self->registry);

        g_debug ("node tunnel %s: from %s, token registered", zlt_node_tunnel_get_name (tunnel),
                 zlt_node_tunnel_get_from (tunnel));
        for (guint i = 0; i < tunnels->len; i++)
          follow_if_ours (self, g_ptr_array_index (tunnels, i));
      }
      break;
    case ZLT_NODE_DIRECTION_NONE:
    default:
      g_debug ("node tunnel %s: from %s to %s, neither is this node (%s)",
               zlt_node_tunnel_get_name (tunnel), zlt_node_tunnel_get_from (tunnel),
               zlt_node_tunnel_get_to (tunnel), self->node_name);
      break;
    }
  g_signal_emit (self, signals[SIGNAL_NODE_ADDED], 0, tunnel);
  if (self->running)
    zlt_node_tunnel_start (tunnel);
  return TRUE;
}

/**
 * zlt_node_manager_remove:
 * @self: a node manager
 * @name: a node tunnel's name
 * @error: return location for a #GError
 *
 * Stops and forgets the tunnel (its token too); %ZLT_ERROR_NOT_FOUND when unknown.
 * Emits #ZltNodeManager::node-removed.
 *
 * Returns: %TRUE when the tunnel was removed
 */
gboolean
zlt_node_manager_remove (ZltNodeManager *self, const char *name, GError **error)
{
  g_autoptr (ZltNodeTunnel) tunnel = NULL;
  gint idx;

  g_return_val_if_fail (ZLT_IS_NODE_MANAGER (self), FALSE);
  g_return_val_if_fail (name != NULL, FALSE);

  idx = find_tunnel (self, name);
  if (idx < 0)
    {
      g_set_error (error, ZLT_ERROR, ZLT_ERROR_NOT_FOUND, _ ("no node tunnel called %s"), name);
      return FALSE;
    }
  tunnel = g_ptr_array_steal_index (self->tunnels, idx);
  zlt_node_tunnel_deactivate (tunnel);
  g_signal_emit (self, signals[SIGNAL_NODE_REMOVED], 0, tunnel);
  return TRUE;
}

/**
 * zlt_node_manager_lookup:
 * @self: a node manager
 * @name: a node tunnel's name
 *
 * Returns: (nullable) (transfer none): the node tunnel called @name
 */
ZltNodeTunnel *
zlt_node_manager_lookup (ZltNodeManager *self, const char *name)
{
  gint idx;

  g_return_val_if_fail (ZLT_IS_NODE_MANAGER (self), NULL);
  g_return_val_if_fail (name != NULL, NULL);

  idx = find_tunnel (self, name);
  return idx >= 0 ? g_ptr_array_index (self->tunnels, idx) : NULL;
}

/**
 * zlt_node_manager_get_tunnels:
 * @self: a node manager
 *
 * Returns: (transfer container) (element-type ZltNodeTunnel): the tunnels, in the order
 *   they were added
 */
GPtrArray *
zlt_node_manager_get_tunnels (ZltNodeManager *self)
{
  GPtrArray *list;

  g_return_val_if_fail (ZLT_IS_NODE_MANAGER (self), NULL);

  list = g_ptr_array_sized_new (self->tunnels->len);
  for (guint i = 0; i < self->tunnels->len; i++)
    g_ptr_array_add (list, g_ptr_array_index (self->tunnels, i));
  return list;
}

/**
 * zlt_node_manager_refresh_tokens:
 * @self: a node manager
 *
 * Inbound tunnels re-read their token files (a reload).
 */
void
zlt_node_manager_refresh_tokens (ZltNodeManager *self)
{
  g_return_if_fail (ZLT_IS_NODE_MANAGER (self));

  for (guint i = 0; i < self->tunnels->len; i++)
    {
      ZltNodeTunnel *node = g_ptr_array_index (self->tunnels, i);
      g_autoptr (GError) error = NULL;

      if (zlt_node_tunnel_get_direction (node) == ZLT_NODE_DIRECTION_INBOUND
          && !zlt_node_tunnel_refresh_token (node, &error))
        g_message ("%s", error->message);
    }
}

/**
 * zlt_node_manager_start:
 * @self: a node manager
 *
 * Starts the agents of the outbound tunnels, and of those added later.
 */
void
zlt_node_manager_start (ZltNodeManager *self)
{
  g_return_if_fail (ZLT_IS_NODE_MANAGER (self));

  if (self->running)
    return;
  self->running = TRUE;
  for (guint i = 0; i < self->tunnels->len; i++)
    zlt_node_tunnel_start (g_ptr_array_index (self->tunnels, i));
}

/**
 * zlt_node_manager_stop:
 * @self: a node manager
 *
 * Stops the agents of the outbound tunnels.
 */
void
zlt_node_manager_stop (ZltNodeManager *self)
{
  g_return_if_fail (ZLT_IS_NODE_MANAGER (self));

  if (!self->running)
    return;
  self->running = FALSE;
  for (guint i = 0; i < self->tunnels->len; i++)
    zlt_node_tunnel_stop (g_ptr_array_index (self->tunnels, i));
}

/**
 * zlt_node_manager_get_n_relays:
 * @self: a node manager
 *
 * Returns: the connections the outbound agents still relay
 */
guint
zlt_node_manager_get_n_relays (ZltNodeManager *self)
{
  guint n = 0;

  g_return_val_if_fail (ZLT_IS_NODE_MANAGER (self), 0);

  for (guint i = 0; i < self->tunnels->len; i++)
    {
      ZltAgent *agent = zlt_node_tunnel_get_agent (g_ptr_array_index (self->tunnels, i));

      if (agent != NULL)
        n += zlt_agent_get_n_relays (agent);
    }
  return n;
}
