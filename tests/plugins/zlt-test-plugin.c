/* zlt-test-plugin.c: a good plugin with a "test" transport (real TCP on loopback), a
 * "test" validator (tokens from its config group or added at runtime) and an insecure
 * "test-insecure" validator */
#include "config.h"

#include <string.h>

#include "zlt-plugin.h"

/* ZltTestListener */

#define ZLT_TYPE_TEST_LISTENER (zlt_test_listener_get_type ())
G_DECLARE_FINAL_TYPE (ZltTestListener, zlt_test_listener, ZLT, TEST_LISTENER, ZltListener)

struct _ZltTestListener
{
  ZltListener parent_instance;
  GSocketService *service;
};

G_DEFINE_FINAL_TYPE (ZltTestListener, zlt_test_listener, ZLT_TYPE_LISTENER)

static gboolean
zlt_test_listener_incoming_cb (GSocketService *service, GSocketConnection *connection,
                               GObject *source, gpointer user_data)
{
  ZltListener *listener = ZLT_LISTENER (user_data);
  g_autoptr (GSocketAddress) peer = g_socket_connection_get_remote_address (connection, NULL);

  zlt_listener_emit_incoming (listener, G_IO_STREAM (connection), peer);
  return TRUE;
}

static void
zlt_test_listener_close (ZltListener *listener)
{
  ZltTestListener *self = ZLT_TEST_LISTENER (listener);

  if (self->service == NULL)
    return;
  g_signal_handlers_disconnect_by_data (self->service, self);
  g_socket_service_stop (self->service);
  g_socket_listener_close (G_SOCKET_LISTENER (self->service));
  g_clear_object (&self->service);
}

static void
zlt_test_listener_dispose (GObject *object)
{
  zlt_listener_close (ZLT_LISTENER (object));
  G_OBJECT_CLASS (zlt_test_listener_parent_class)->dispose (object);
}

static void
zlt_test_listener_class_init (ZltTestListenerClass *klass)
{
  G_OBJECT_CLASS (klass)->dispose = zlt_test_listener_dispose;
  ZLT_LISTENER_CLASS (klass)->close = zlt_test_listener_close;
}

static void
zlt_test_listener_init (ZltTestListener *self)
{
}

/* ZltTestTransport */

#define ZLT_TYPE_TEST_TRANSPORT (zlt_test_transport_get_type ())
G_DECLARE_FINAL_TYPE (ZltTestTransport, zlt_test_transport, ZLT, TEST_TRANSPORT, ZltTransport)

struct _ZltTestTransport
{
  ZltTransport parent_instance;
};

G_DEFINE_FINAL_TYPE (ZltTestTransport, zlt_test_transport, ZLT_TYPE_TRANSPORT)

static ZltListener *
zlt_test_transport_listen (ZltTransport *transport, const char *bind_address, guint16 port,
                           GError **error)
{
  g_autoptr (ZltTestListener) self = g_object_new (ZLT_TYPE_TEST_LISTENER, NULL);
  g_autoptr (GSocketAddress) address = g_inet_socket_address_new_from_string (bind_address, port);
  g_autoptr (GSocketAddress) effective = NULL;

  if (address == NULL)
    {
      g_set_error (error, ZLT_ERROR, ZLT_ERROR_FAILED, "not an IP address: %s", bind_address);
      return NULL;
    }
  self->service = g_socket_service_new ();
  if (!g_socket_listener_add_address (G_SOCKET_LISTENER (self->service), address,
                                      G_SOCKET_TYPE_STREAM, G_SOCKET_PROTOCOL_TCP, NULL, &effective,
                                      error))
    return NULL;
  zlt_listener_set_port (ZLT_LISTENER (self),
                         g_inet_socket_address_get_port (G_INET_SOCKET_ADDRESS (effective)));
  g_signal_connect (self->service, "incoming", G_CALLBACK (zlt_test_listener_incoming_cb), self);
  g_socket_service_start (self->service);
  return ZLT_LISTENER (g_steal_pointer (&self));
}

static void
zlt_test_transport_connect_cb (GObject *source, GAsyncResult *result, gpointer user_data)
{
  g_autoptr (GTask) task = G_TASK (user_data);
  GError *error = NULL;
  GSocketConnection *connection;

  connection = g_socket_client_connect_to_host_finish (G_SOCKET_CLIENT (source), result, &error);
  if (connection == NULL)
    g_task_return_error (task, error);
  else
    g_task_return_pointer (task, connection, g_object_unref);
}

static void
zlt_test_transport_dial_async (ZltTransport *transport, const char *host, guint16 port,
                               GCancellable *cancellable, GAsyncReadyCallback callback,
                               gpointer user_data)
{
  g_autoptr (GSocketClient) client = g_socket_client_new ();
  GTask *task = g_task_new (transport, cancellable, callback, user_data);

  g_socket_client_connect_to_host_async (client, host, port, cancellable,
                                         zlt_test_transport_connect_cb, task);
}

static void
zlt_test_transport_class_init (ZltTestTransportClass *klass)
{
  ZltTransportClass *transport_class = ZLT_TRANSPORT_CLASS (klass);

  transport_class->name = "test";
  transport_class->protocol = ZLT_PROTOCOL_TCP;
  transport_class->listen = zlt_test_transport_listen;
  transport_class->dial_async = zlt_test_transport_dial_async;
  /* dial_finish: the base class's GTask default */
}

static void
zlt_test_transport_init (ZltTestTransport *self)
{
}

/* ZltTestValidator */

typedef struct
{
  char *name;
  guint8 hash[ZLT_HASH_SIZE];
  GStrv services;
  gint64 expiry;
} ZltTestToken;

static void
zlt_test_token_free (ZltTestToken *token)
{
  g_free (token->name);
  g_strfreev (token->services);
  g_free (token);
}

#define ZLT_TYPE_TEST_VALIDATOR (zlt_test_validator_get_type ())
G_DECLARE_FINAL_TYPE (ZltTestValidator, zlt_test_validator, ZLT, TEST_VALIDATOR, ZltValidator)

struct _ZltTestValidator
{
  ZltValidator parent_instance;
  GHashTable *tokens; /* key id → ZltTestToken */
};

G_DEFINE_FINAL_TYPE (ZltTestValidator, zlt_test_validator, ZLT_TYPE_VALIDATOR)

static gboolean
zlt_test_validator_add_token (ZltValidator *validator, const char *name,
                              const guint8 hash[ZLT_HASH_SIZE], const char *const *services,
                              gint64 expiry, GError **error)
{
  ZltTestValidator *self = ZLT_TEST_VALIDATOR (validator);
  g_autofree char *hex = zlt_hex_encode (hash, ZLT_HASH_SIZE);
  ZltTestToken *token = g_new0 (ZltTestToken, 1);

  token->name = g_strdup (name);
  memcpy (token->hash, hash, ZLT_HASH_SIZE);
  token->services = g_strdupv ((char **) services);
  token->expiry = expiry;
  g_hash_table_replace (self->tokens, g_strndup (hex, ZLT_KEY_ID_LEN), token);
  return TRUE;
}

static gboolean
zlt_test_validator_remove_name_cb (gpointer key, gpointer value, gpointer user_data)
{
  return g_strcmp0 (((ZltTestToken *) value)->name, user_data) == 0;
}

static gboolean
zlt_test_validator_remove_token (ZltValidator *validator, const char *name, GError **error)
{
  ZltTestValidator *self = ZLT_TEST_VALIDATOR (validator);

  if (g_hash_table_foreach_remove (self->tokens, zlt_test_validator_remove_name_cb, (gpointer) name)
      == 0)
    {
      g_set_error (error, ZLT_ERROR, ZLT_ERROR_NOT_FOUND, "no token named %s", name);
      return FALSE;
    }
  return TRUE;
}

static gboolean
zlt_test_validator_configure (ZltValidator *validator, GKeyFile *config, const char *group,
                              GError **error)
{
  g_autofree char *name = NULL;
  g_autofree char *hex = NULL;
  g_auto (GStrv) services = NULL;
  guint8 hash[ZLT_HASH_SIZE];

  if (!g_key_file_has_group (config, group))
    return TRUE;
  name = g_key_file_get_string (config, group, "name", error);
  if (name == NULL)
    return FALSE;
  hex = g_key_file_get_string (config, group, "hash", error);
  if (hex == NULL)
    return FALSE;
  if (!zlt_hash_from_hex (hex, hash))
    {
      g_set_error (error, ZLT_ERROR, ZLT_ERROR_INVALID_CONFIG, "[%s] hash: not 64 hex digits",
                   group);
      return FALSE;
    }
  services = g_key_file_get_string_list (config, group, "services", NULL, NULL);
  return zlt_test_validator_add_token (validator, name, hash, (const char *const *) services,
                                       g_key_file_get_int64 (config, group, "expiry", NULL), error);
}

static ZltGrant *
zlt_test_validator_validate (ZltValidator *validator, const ZltCredential *credential,
                             GError **error)
{
  ZltTestValidator *self = ZLT_TEST_VALIDATOR (validator);
  ZltTestToken *token
      = g_hash_table_lookup (self->tokens, zlt_credential_get_lookup_key (credential));

  if (token == NULL || !zlt_credential_matches_hash (credential, token->hash))
    {
      g_set_error_literal (error, ZLT_ERROR, ZLT_ERROR_BAD_TOKEN, "invalid token");
      return NULL;
    }
  /* expiry is left to the base class on purpose */
  return zlt_grant_new (token->name, token->hash, (const char *const *) token->services,
                        token->expiry);
}

static void
zlt_test_validator_finalize (GObject *object)
{
  ZltTestValidator *self = ZLT_TEST_VALIDATOR (object);

  g_hash_table_unref (self->tokens);
  G_OBJECT_CLASS (zlt_test_validator_parent_class)->finalize (object);
}

static void
zlt_test_validator_class_init (ZltTestValidatorClass *klass)
{
  ZltValidatorClass *validator_class = ZLT_VALIDATOR_CLASS (klass);

  G_OBJECT_CLASS (klass)->finalize = zlt_test_validator_finalize;
  validator_class->name = "test";
  validator_class->configure = zlt_test_validator_configure;
  validator_class->validate = zlt_test_validator_validate;
  validator_class->add_token = zlt_test_validator_add_token;
  validator_class->remove_token = zlt_test_validator_remove_token;
}

static void
zlt_test_validator_init (ZltTestValidator *self)
{
  self->tokens = g_hash_table_new_full (g_str_hash, g_str_equal, g_free,
                                        (GDestroyNotify) zlt_test_token_free);
}

/* ZltTestInsecureValidator */

#define ZLT_TYPE_TEST_INSECURE_VALIDATOR (zlt_test_insecure_validator_get_type ())
G_DECLARE_FINAL_TYPE (ZltTestInsecureValidator, zlt_test_insecure_validator, ZLT,
                      TEST_INSECURE_VALIDATOR, ZltValidator)

struct _ZltTestInsecureValidator
{
  ZltValidator parent_instance;
};

G_DEFINE_FINAL_TYPE (ZltTestInsecureValidator, zlt_test_insecure_validator, ZLT_TYPE_VALIDATOR)

static ZltGrant *
zlt_test_insecure_validator_validate (ZltValidator *validator, const ZltCredential *credential,
                                      GError **error)
{
  return zlt_grant_new ("anyone", NULL, NULL, 0);
}

static void
zlt_test_insecure_validator_class_init (ZltTestInsecureValidatorClass *klass)
{
  ZltValidatorClass *validator_class = ZLT_VALIDATOR_CLASS (klass);

  validator_class->name = "test-insecure";
  validator_class->insecure = TRUE;
  validator_class->validate = zlt_test_insecure_validator_validate;
}

static void
zlt_test_insecure_validator_init (ZltTestInsecureValidator *self)
{
}

/* entry point */

static gboolean
zlt_test_plugin_register (ZltPluginLoader *loader, GError **error)
{
  return zlt_plugin_loader_add_transport_type (loader, ZLT_TYPE_TEST_TRANSPORT, error)
         && zlt_plugin_loader_add_validator_type (loader, ZLT_TYPE_TEST_VALIDATOR, error)
         && zlt_plugin_loader_add_validator_type (loader, ZLT_TYPE_TEST_INSECURE_VALIDATOR, error);
}

ZLT_PLUGIN_DEFINE (zlt_test_plugin_register)
