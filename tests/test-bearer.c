/* test-bearer.c: bearer credentials (PROTOCOL-v2.md §2a). A validator that asks for the
 * raw token gets it from an agent over wss:// with a verified certificate (CA file or
 * pin), and the tunnel works; over ws:// or wss:// with verification off the agent
 * refuses, fatally, and no byte of the token reaches the server. Challenge validators
 * see what they always saw. */
#define _GNU_SOURCE /* memmem */
#include "config.h"

#include <string.h>

#include "zlt-test-util.h"

/* ---- a validator that wants the token itself, and remembers what it got ---- */

#define TEST_TYPE_BEARER_VALIDATOR (test_bearer_validator_get_type ())
G_DECLARE_FINAL_TYPE (TestBearerValidator, test_bearer_validator, TEST, BEARER_VALIDATOR,
                      ZltValidator)

struct _TestBearerValidator
{
  ZltValidator parent_instance;
  char *accept;       /* the one token it lets in */
  GPtrArray *seen;    /* char*: the raw tokens of the bearer credentials it was given */
  guint n_validated;  /* credentials of any kind */
  guint n_not_bearer; /* credentials that were not bearer ones */
  char *peer_address; /* of the last credential */
};

G_DEFINE_FINAL_TYPE (TestBearerValidator, test_bearer_validator, ZLT_TYPE_VALIDATOR)

static ZltGrant *
test_bearer_validator_validate (ZltValidator *validator, const ZltCredential *credential,
                                GError **error)
{
  TestBearerValidator *self = TEST_BEARER_VALIDATOR (validator);
  const char *token = zlt_credential_get_token (credential);

  self->n_validated++;
  g_free (self->peer_address);
  self->peer_address = g_strdup (zlt_credential_get_peer_address (credential));
  if (zlt_credential_get_kind (credential) != ZLT_CREDENTIAL_KIND_BEARER || token == NULL)
    {
      self->n_not_bearer++;
      g_set_error_literal (error, ZLT_ERROR, ZLT_ERROR_BAD_TOKEN, "not a bearer credential");
      return NULL;
    }
  g_ptr_array_add (self->seen, g_strdup (token));
  if (g_strcmp0 (token, self->accept) != 0)
    {
      g_set_error_literal (error, ZLT_ERROR, ZLT_ERROR_BAD_TOKEN, "unknown token");
      return NULL;
    }
  /* no token hash in the grant: the server must not need one for a bearer session */
  return zlt_grant_new ("bearer-user", NULL, NULL, 0);
}

static void
test_bearer_validator_finalize (GObject *object)
{
  TestBearerValidator *self = TEST_BEARER_VALIDATOR (object);

  g_free (self->accept);
  g_free (self->peer_address);
  g_ptr_array_unref (self->seen);
  G_OBJECT_CLASS (test_bearer_validator_parent_class)->finalize (object);
}

static void
test_bearer_validator_class_init (TestBearerValidatorClass *klass)
{
  ZltValidatorClass *validator_class = ZLT_VALIDATOR_CLASS (klass);

  G_OBJECT_CLASS (klass)->finalize = test_bearer_validator_finalize;
  validator_class->name = "test-bearer";
  validator_class->validate = test_bearer_validator_validate;
}

static void
test_bearer_validator_init (TestBearerValidator *self)
{
  self->seen = g_ptr_array_new_with_free_func (g_free);
  zlt_validator_set_credential_mode (ZLT_VALIDATOR (self), ZLT_CREDENTIAL_MODE_BEARER);
}

/* ---- what the server received: every control message any channel got ---- */

typedef struct
{
  GPtrArray *received; /* GBytes of every "message" emission, both directions */
  guint hook;
  gpointer channel_class; /* signals exist once the class does */
} Wire;

static gboolean
on_channel_message (GSignalInvocationHint *hint, guint n_params, const GValue *params,
                    gpointer user_data)
{
  Wire *wire = user_data;
  GBytes *bytes = g_value_get_boxed (&params[1]);

  g_ptr_array_add (wire->received, g_bytes_ref (bytes));
  return TRUE;
}

static void
wire_start (Wire *wire)
{
  wire->received = g_ptr_array_new_with_free_func ((GDestroyNotify) g_bytes_unref);
  wire->channel_class = g_type_class_ref (ZLT_TYPE_CHANNEL);
  wire->hook = g_signal_add_emission_hook (g_signal_lookup ("message", ZLT_TYPE_CHANNEL), 0,
                                           on_channel_message, wire, NULL);
}

static void
wire_stop (Wire *wire)
{
  if (wire->hook != 0)
    g_signal_remove_emission_hook (g_signal_lookup ("message", ZLT_TYPE_CHANNEL), wire->hook);
  wire->hook = 0;
  g_clear_pointer (&wire->received, g_ptr_array_unref);
  g_clear_pointer (&wire->channel_class, g_type_class_unref);
}

/* The Auth frames the server got (only agents send Auth), decoded. */
static GPtrArray *
wire_auths (Wire *wire)
{
  GPtrArray *auths = g_ptr_array_new_with_free_func ((GDestroyNotify) zlt_message_free);

  for (guint i = 0; i < wire->received->len; i++)
    {
      GBytes *bytes = g_ptr_array_index (wire->received, i);
      g_autoptr (GPtrArray) frames
          = zlt_message_decode_all (g_bytes_get_data (bytes, NULL), g_bytes_get_size (bytes), NULL);

      for (guint j = 0; frames != NULL && j < frames->len; j++)
        {
          ZltMessage *msg = g_ptr_array_index (frames, j);
          if (msg->type == ZLT_MESSAGE_AUTH)
            g_ptr_array_add (auths, zlt_message_copy (msg));
        }
    }
  return auths;
}

/* Whether @needle occurs anywhere in what the channels received. */
static gboolean
wire_contains (Wire *wire, const char *needle)
{
  for (guint i = 0; i < wire->received->len; i++)
    {
      GBytes *bytes = g_ptr_array_index (wire->received, i);
      gsize len;
      const char *data = g_bytes_get_data (bytes, &len);

      if (len >= strlen (needle) && memmem (data, len, needle, strlen (needle)) != NULL)
        return TRUE;
    }
  return FALSE;
}

/* ---- fixture: a server with the bearer validator, TLS unless the test says not ---- */

typedef struct
{
  ZltTestHarness h;
  TestBearerValidator *validator;
  char *cert_file;
  char *key_file;
  char *fingerprint;
  Wire wire;
} Fixture;

static void
fixture_setup (Fixture *f, gconstpointer data)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (GTlsCertificate) cert = NULL;

  zlt_test_harness_init (&f->h, "32600-32699");
  if (!zlt_test_make_certificate (f->h.tmpdir, &f->cert_file, &f->key_file))
    g_error ("certtool (gnutls-bin) failed to make a test certificate");
  cert = g_tls_certificate_new_from_file (f->cert_file, &error);
  g_assert_no_error (error);
  f->fingerprint = zlt_tls_certificate_fingerprint (cert);
  f->validator = g_object_new (TEST_TYPE_BEARER_VALIDATOR, NULL);
  /* the agent presents the harness's token; the validator lets exactly that one in */
  f->validator->accept = g_strdup (f->h.token);
  wire_start (&f->wire);
}

static void
fixture_teardown (Fixture *f, gconstpointer data)
{
  zlt_test_harness_clear (&f->h);
  wire_stop (&f->wire);
  g_clear_object (&f->validator);
  g_free (f->cert_file);
  g_free (f->key_file);
  g_free (f->fingerprint);
}

/* As zlt_test_harness_start_server(), with @validator instead of the token file. */
static void
start_server (Fixture *f, ZltValidator *validator, gboolean tls)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (ZltServerConfig) config = NULL;
  g_autoptr (ZltControlTransport) control = NULL;
  g_autoptr (ZltTransport) tcp = NULL;
  g_autoptr (ZltTransport) udp = NULL;
  g_autofree char *url = NULL;

  if (tls)
    {
      g_key_file_set_string (f->h.server_keyfile, "server", "tls-certificate", f->cert_file);
      g_key_file_set_string (f->h.server_keyfile, "server", "tls-key", f->key_file);
    }
  config = zlt_server_config_new_from_keyfile (f->h.server_keyfile, &error);
  g_assert_no_error (error);
  if (validator == NULL)
    {
      f->h.server = zlt_server_new (config, f->h.loader, &error);
      g_assert_no_error (error);
    }
  else
    {
      zlt_plugin_loader_new_tunnel_transports (f->h.loader, &control, &tcp, &udp, &error);
      g_assert_no_error (error);
      f->h.server = zlt_server_new_full (config, validator, control, tcp, udp);
    }
  zlt_server_start (f->h.server, &error);
  g_assert_no_error (error);
  url = g_strdup_printf ("%s://127.0.0.1:%u/tunnel/v1", tls ? "wss" : "ws",
                         zlt_server_get_port (f->h.server));
  zlt_test_harness_set_agent_url (&f->h, url);
  zlt_test_harness_add_service (&f->h, "echo", zlt_test_echo_get_port (f->h.echo), 0);
}

static void
transfer (guint16 port, gsize n_bytes)
{
  ZltTestTransfer t = { 0 };
  GThread *thread;

  t.port = port;
  t.n_bytes = n_bytes;
  t.n_connections = 2;
  thread = zlt_test_transfer_start (&t);
  zlt_test_transfer_finish (thread, &t, 60000);
  g_assert_null (t.error);
  g_assert_true (t.ok);
  g_assert_cmpuint (t.received, ==, n_bytes * 2);
}

/* The agent logged in with its raw token, the validator saw exactly that, and the
 * tunnel carries data (so both ends derived the same session key from it). */
static void
assert_bearer_session (Fixture *f)
{
  g_autoptr (GPtrArray) auths = NULL;
  ZltMessage *auth;
  ZltService *service;
  guint16 port = zlt_test_harness_wait_registered (&f->h, "echo");

  transfer (port, 256 * 1024);
  g_assert_cmpuint (f->validator->n_not_bearer, ==, 0);
  g_assert_cmpuint (f->validator->seen->len, >=, 1);
  g_assert_cmpstr (g_ptr_array_index (f->validator->seen, 0), ==, f->h.token);
  g_assert_true (g_str_has_prefix (f->validator->peer_address, "127.0.0.1:"));
  /* on the wire: the token in the token field, BEARER in CAPS, no proof */
  auths = wire_auths (&f->wire);
  g_assert_cmpuint (auths->len, >=, 1);
  auth = g_ptr_array_index (auths, 0);
  g_assert_cmpstr (auth->token, ==, f->h.token);
  g_assert_true (zlt_message_has_ext_fields (auth, ZLT_EXT_VERSION | ZLT_EXT_CAPS));
  g_assert_true (auth->ext.caps & ZLT_CAP_BEARER);
  g_assert_false (zlt_message_has_ext_fields (auth, ZLT_EXT_PROOF));
  g_assert_false (zlt_agent_get_fatal (f->h.agent));
  /* the server's tunnel belongs to the validator's grant */
  service = zlt_registry_lookup_service_by_port (zlt_server_get_registry (f->h.server),
                                                 ZLT_PROTOCOL_TCP, port);
  g_assert_nonnull (service);
  g_assert_cmpstr (zlt_tunnel_get_token_name (zlt_service_get_tunnel (service)), ==, "bearer-user");
}

static void
test_ca_file (Fixture *f, gconstpointer data)
{
  start_server (f, ZLT_VALIDATOR (f->validator), TRUE);
  g_key_file_set_string (f->h.agent_keyfile, "agent", "tls-ca-file", f->cert_file);
  zlt_test_harness_start_agent (&f->h);
  assert_bearer_session (f);
}

static void
test_pinned (Fixture *f, gconstpointer data)
{
  start_server (f, ZLT_VALIDATOR (f->validator), TRUE);
  g_key_file_set_string (f->h.agent_keyfile, "agent", "tls-pinned-sha256", f->fingerprint);
  zlt_test_harness_start_agent (&f->h);
  assert_bearer_session (f);
}

/* A pin checks the certificate even with tls-insecure=true: still verified. */
static void
test_pinned_insecure (Fixture *f, gconstpointer data)
{
  start_server (f, ZLT_VALIDATOR (f->validator), TRUE);
  g_key_file_set_string (f->h.agent_keyfile, "agent", "tls-pinned-sha256", f->fingerprint);
  g_key_file_set_boolean (f->h.agent_keyfile, "agent", "tls-insecure", TRUE);
  zlt_test_harness_start_agent (&f->h);
  assert_bearer_session (f);
}

/* The agent gives up with @expected in its error and nothing of the token, nor any Auth,
 * reached the server. */
static void
assert_refused (Fixture *f, const char *expected)
{
  g_autoptr (GPtrArray) auths = NULL;
  g_autofree char *key_id = zlt_token_key_id (f->h.token);
  const char *error;

  ZLT_TEST_WAIT_FOR (zlt_agent_get_last_error (f->h.agent) != NULL, 10000);
  error = zlt_agent_get_last_error (f->h.agent);
  g_test_message ("agent: %s", error);
  g_assert_nonnull (strstr (error, "bearer credential"));
  g_assert_nonnull (strstr (error, expected));
  g_assert_true (zlt_agent_get_fatal (f->h.agent));
  g_assert_cmpint (zlt_agent_get_state (f->h.agent), !=, ZLT_TUNNEL_STATE_CONNECTED);
  /* let anything in flight arrive before looking */
  while (g_main_context_iteration (NULL, FALSE))
    ;
  auths = wire_auths (&f->wire);
  g_assert_cmpuint (auths->len, ==, 0);
  g_assert_false (wire_contains (&f->wire, f->h.token));
  g_assert_false (wire_contains (&f->wire, key_id));
  g_assert_cmpuint (f->validator->n_validated, ==, 0);
  for (guint code = 1; code <= ZLT_REASON_MAX; code++)
    g_assert_cmpuint (zlt_server_get_auth_failures (f->h.server, code), ==, 0);
  /* the error says why, never the token */
  g_assert_null (strstr (error, f->h.token));
}

static void
test_refused_plain (Fixture *f, gconstpointer data)
{
  start_server (f, ZLT_VALIDATOR (f->validator), FALSE);
  zlt_test_harness_start_agent (&f->h);
  assert_refused (f, "is not TLS");
}

static void
test_refused_insecure (Fixture *f, gconstpointer data)
{
  start_server (f, ZLT_VALIDATOR (f->validator), TRUE);
  g_key_file_set_boolean (f->h.agent_keyfile, "agent", "tls-insecure", TRUE);
  zlt_test_harness_start_agent (&f->h);
  assert_refused (f, "verification is off");
}

/* A challenge validator (the token file) sees what it always saw: a key id and a proof;
 * the raw token never crosses even wss://. */
static void
test_challenge_unchanged (Fixture *f, gconstpointer data)
{
  g_autoptr (GPtrArray) auths = NULL;
  g_autofree char *key_id = zlt_token_key_id (f->h.token);
  ZltMessage *auth;

  start_server (f, NULL, TRUE);
  g_key_file_set_string (f->h.agent_keyfile, "agent", "tls-ca-file", f->cert_file);
  zlt_test_harness_start_agent (&f->h);
  transfer (zlt_test_harness_wait_registered (&f->h, "echo"), 64 * 1024);
  auths = wire_auths (&f->wire);
  g_assert_cmpuint (auths->len, >=, 1);
  auth = g_ptr_array_index (auths, 0);
  g_assert_cmpstr (auth->token, ==, key_id);
  g_assert_true (zlt_message_has_ext_fields (auth, ZLT_EXT_PROOF));
  g_assert_false (auth->ext.caps & ZLT_CAP_BEARER);
  g_assert_false (wire_contains (&f->wire, f->h.token));
}

/* An agent that does not know §2a sends a proof to a bearer server: a refusal it will
 * not retry fast, that says what to do. */
static void
test_old_agent (Fixture *f, gconstpointer data)
{
  g_autoptr (ZltTestWs) ws = NULL;
  g_autoptr (ZltMessage) reply = NULL;

  start_server (f, ZLT_VALIDATOR (f->validator), FALSE);
  ws = zlt_test_ws_connect (zlt_server_get_port (f->h.server), "/tunnel/v1");
  reply = zlt_test_ws_v2_auth (ws, f->h.token, ZLT_CAP_DATA_RAW, -1, NULL);
  g_assert_cmpint (reply->type, ==, ZLT_MESSAGE_AUTH_FAIL);
  g_assert_true (zlt_message_has_ext_fields (reply, ZLT_EXT_CODE));
  g_assert_cmpuint (reply->ext.code, ==, ZLT_REASON_BAD_TOKEN);
  g_assert_nonnull (strstr (reply->reason, "bearer"));
  g_assert_cmpuint (f->validator->n_validated, ==, 0);
  zlt_test_ws_wait_closed (ws, 5000);
}

/* A bearer Auth the server did not ask for is a protocol error, and the validator never
 * sees the token. */
static void
test_unasked (Fixture *f, gconstpointer data)
{
  g_autoptr (ZltTestWs) ws = NULL;
  g_autoptr (ZltMessage) auth = NULL;
  g_autoptr (ZltMessage) reply = NULL;
  ZltUuid client_id;

  start_server (f, NULL, FALSE);
  ws = zlt_test_ws_connect (zlt_server_get_port (f->h.server), "/tunnel/v1");
  zlt_uuid_generate (&client_id);
  auth = zlt_message_new_auth (f->h.token, &client_id);
  zlt_message_set_version (auth, ZLT_PROTOCOL_VERSION);
  zlt_message_set_caps (auth, ZLT_CAP_DATA_RAW | ZLT_CAP_BEARER);
  zlt_test_ws_send_message (ws, auth);
  reply = zlt_test_ws_expect (ws, ZLT_MESSAGE_AUTH_FAIL, NULL, 10000);
  g_assert_true (zlt_message_has_ext_fields (reply, ZLT_EXT_CODE));
  g_assert_cmpuint (reply->ext.code, ==, ZLT_REASON_PROTOCOL);
  g_assert_cmpuint (zlt_server_get_auth_failures (f->h.server, ZLT_REASON_PROTOCOL), ==, 1);
  zlt_test_ws_wait_closed (ws, 5000);
}

/* A bearer credential keeps the token for the validator, and its hash and key id. */
static void
test_credential (void)
{
  const char *token = "zlt_bearer_credential_test_token";
  guint8 nonce[ZLT_NONCE_SIZE] = { 1, 2, 3 };
  guint8 hash[ZLT_HASH_SIZE];
  g_autofree char *key_id = zlt_token_key_id (token);
  g_autoptr (ZltCredential) credential = NULL;
  g_autoptr (ZltCredential) copy = NULL;
  g_autoptr (ZltCredential) v1 = zlt_credential_new_token (token);
  ZltUuid client_id;

  zlt_uuid_generate (&client_id);
  zlt_token_hash_raw (token, hash);
  credential = zlt_credential_new_bearer (token, nonce, &client_id);
  g_assert_cmpint (zlt_credential_get_kind (credential), ==, ZLT_CREDENTIAL_KIND_BEARER);
  g_assert_cmpstr (zlt_credential_get_token (credential), ==, token);
  g_assert_cmpstr (zlt_credential_get_lookup_key (credential), ==, key_id);
  g_assert_cmpmem (zlt_credential_get_token_hash (credential), ZLT_HASH_SIZE, hash, ZLT_HASH_SIZE);
  g_assert_cmpmem (zlt_credential_get_nonce (credential), ZLT_NONCE_SIZE, nonce, ZLT_NONCE_SIZE);
  g_assert_true (zlt_uuid_equal (zlt_credential_get_client_id (credential), &client_id));
  g_assert_true (zlt_credential_matches_hash (credential, hash));
  hash[0] ^= 1;
  g_assert_false (zlt_credential_matches_hash (credential, hash));
  copy = zlt_credential_copy (credential);
  g_assert_cmpstr (zlt_credential_get_token (copy), ==, token);
  g_assert_true (zlt_credential_get_token (copy) != zlt_credential_get_token (credential));
  /* a v1 credential never keeps the token itself */
  g_assert_null (zlt_credential_get_token (v1));
  g_assert_nonnull (zlt_credential_get_token_hash (v1));
}

static void
test_validator_mode (void)
{
  g_autoptr (TestBearerValidator) validator = g_object_new (TEST_TYPE_BEARER_VALIDATOR, NULL);

  g_assert_cmpint (zlt_validator_get_credential_mode (ZLT_VALIDATOR (validator)), ==,
                   ZLT_CREDENTIAL_MODE_BEARER);
  zlt_validator_set_credential_mode (ZLT_VALIDATOR (validator), ZLT_CREDENTIAL_MODE_CHALLENGE);
  g_assert_cmpint (zlt_validator_get_credential_mode (ZLT_VALIDATOR (validator)), ==,
                   ZLT_CREDENTIAL_MODE_CHALLENGE);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  zlt_init ();

  g_test_add_func ("/bearer/credential", test_credential);
  g_test_add_func ("/bearer/validator-mode", test_validator_mode);
  g_test_add ("/bearer/ca-file", Fixture, NULL, fixture_setup, test_ca_file, fixture_teardown);
  g_test_add ("/bearer/pinned", Fixture, NULL, fixture_setup, test_pinned, fixture_teardown);
  g_test_add ("/bearer/pinned-insecure", Fixture, NULL, fixture_setup, test_pinned_insecure,
              fixture_teardown);
  g_test_add ("/bearer/refused-plain", Fixture, NULL, fixture_setup, test_refused_plain,
              fixture_teardown);
  g_test_add ("/bearer/refused-insecure", Fixture, NULL, fixture_setup, test_refused_insecure,
              fixture_teardown);
  g_test_add ("/bearer/challenge-unchanged", Fixture, NULL, fixture_setup, test_challenge_unchanged,
              fixture_teardown);
  g_test_add ("/bearer/old-agent", Fixture, NULL, fixture_setup, test_old_agent, fixture_teardown);
  g_test_add ("/bearer/unasked", Fixture, NULL, fixture_setup, test_unasked, fixture_teardown);
  return g_test_run ();
}
