/* test-config.c: server and agent configs: defaults, validation, round trips, tokens */
#include "config.h"

#include <string.h>

#include <glib/gstdio.h>

#include "zlayer-tunnel.h"

typedef struct
{
  const char *data;
  const char *needle; /* what the error message must contain */
} BadCase;

static void
remove_dir (const char *dir)
{
  g_autoptr (GDir) d = g_dir_open (dir, 0, NULL);
  const char *name;

  if (d == NULL)
    return;
  while ((name = g_dir_read_name (d)) != NULL)
    {
      g_autofree char *path = g_build_filename (dir, name, NULL);

      g_assert_cmpint (g_unlink (path), ==, 0);
    }
  g_assert_cmpint (g_rmdir (dir), ==, 0);
}

static GKeyFile *
keyfile_from (const char *data)
{
  g_autoptr (GKeyFile) kf = g_key_file_new ();
  g_autoptr (GError) error = NULL;

  g_key_file_load_from_data (kf, data, -1, G_KEY_FILE_NONE, &error);
  g_assert_no_error (error);
  return g_steal_pointer (&kf);
}

/* server */

static void
assert_server_defaults (ZltServerConfig *config)
{
  guint16 min = 0;
  guint16 max = 0;

  g_assert_cmpstr (zlt_server_config_get_listen_address (config), ==, "0.0.0.0");
  g_assert_cmpuint (zlt_server_config_get_listen_port (config), ==, 3679);
  g_assert_cmpstr (zlt_server_config_get_public_bind_address (config), ==, "0.0.0.0");
  g_assert_null (zlt_server_config_get_tls_certificate (config));
  g_assert_null (zlt_server_config_get_tls_key (config));
  g_assert_false (zlt_server_config_get_use_tls (config));
  zlt_server_config_get_port_range (config, &min, &max);
  g_assert_cmpuint (min, ==, 30000);
  g_assert_cmpuint (max, ==, 31000);
  g_assert_cmpuint (zlt_server_config_get_max_tunnels (config), ==, 256);
  g_assert_cmpuint (zlt_server_config_get_max_services_per_tunnel (config), ==, 32);
  g_assert_cmpuint (zlt_server_config_get_heartbeat_interval (config), ==, 15);
  g_assert_cmpuint (zlt_server_config_get_heartbeat_timeout (config), ==, 30);
  g_assert_cmpuint (zlt_server_config_get_auth_timeout (config), ==, 10);
  g_assert_cmpuint (zlt_server_config_get_connect_timeout (config), ==, 10);
  g_assert_cmpuint (zlt_server_config_get_resume_grace (config), ==, 30);
  g_assert_cmpint (zlt_server_config_get_replica_balance (config), ==,
                   ZLT_REPLICA_BALANCE_ROUND_ROBIN);
  g_assert_false (zlt_server_config_get_allow_legacy_auth (config));
  g_assert_cmpstr (zlt_server_config_get_validator (config), ==, "token-file");
  g_assert_cmpstr (zlt_server_config_get_validator_group (config), ==, "validator:token-file");
  g_assert_false (zlt_server_config_get_insecure (config));
  g_assert_cmpuint (zlt_server_config_get_limits (config)->standby_connections, ==, 64);
  g_assert_cmpuint (zlt_server_config_get_limits (config)->token_max[ZLT_QUOTA_STANDBY], ==, 256);
}

static void
test_server_defaults (void)
{
  g_autoptr (ZltServerConfig) config = zlt_server_config_new_default ();
  g_autoptr (ZltServerConfig) empty = NULL;
  g_autoptr (GKeyFile) kf = keyfile_from ("[server]\n");
  g_autoptr (GError) error = NULL;

  assert_server_defaults (config);
  empty = zlt_server_config_new_from_keyfile (kf, &error);
  g_assert_no_error (error);
  assert_server_defaults (empty);
}

static const BadCase server_bad[] = {
  { "[agent]\n", "[server]: group missing" },
  { "[server]\nlisten=nowhere\n", "[server] listen: ‘nowhere’ is not an IP address" },
  { "[server]\nlisten=127.0.0.1:99999\n", "[server] listen:" },
  { "[server]\nlisten=\n", "[server] listen: must not be empty" },
  { "[server]\nlisten=127.0.0.1:30500\n", "[server] listen: port 30500 lies inside port-range" },
  { "[server]\npublic-bind-address=example.com\n", "[server] public-bind-address:" },
  { "[server]\ntls-certificate=/etc/cert.pem\n", "[server] tls-key: tls-certificate and tls-key" },
  { "[server]\ntls-key=/etc/key.pem\n", "[server] tls-certificate: tls-certificate and tls-key" },
  { "[server]\nport-range=30000\n", "[server] port-range:" },
  { "[server]\nport-range=a-b\n", "[server] port-range:" },
  { "[server]\nport-range=0-100\n", "[server] port-range:" },
  { "[server]\nport-range=1000-70000\n", "[server] port-range:" },
  { "[server]\nport-range=2000-1000\n", "[server] port-range: the first port" },
  { "[server]\nmax-tunnels=0\n", "[server] max-tunnels: must be a whole number" },
  { "[server]\nmax-tunnels=many\n", "[server] max-tunnels: must be a whole number" },
  { "[server]\nmax-services-per-tunnel=-1\n", "[server] max-services-per-tunnel:" },
  { "[server]\nheartbeat-interval=0\n", "[server] heartbeat-interval:" },
  { "[server]\nheartbeat-timeout=15\n", "[server] heartbeat-timeout: must be greater than" },
  { "[server]\nheartbeat-interval=60\n", "[server] heartbeat-timeout: must be greater than" },
  { "[server]\nauth-timeout=0\n", "[server] auth-timeout:" },
  { "[server]\nconnect-timeout=1.5\n", "[server] connect-timeout:" },
  { "[server]\nresume-grace=soon\n", "[server] resume-grace:" },
  { "[server]\nallow-legacy-auth=maybe\n", "[server] allow-legacy-auth: must be true or false" },
  { "[server]\ninsecure=yes\n", "[server] insecure: must be true or false" },
  { "[server]\nvalidator=Token File\n", "[server] validator:" },
  { "[server]\nlisten-port=1\n", "[server] listen-port: unknown key" },
  { "[server]\nstandby-connections=1025\n", "[server] standby-connections:" },
  { "[server]\ntoken-max-standby=-1\n", "[server] token-max-standby:" },
  { "[server]\nreplica-balance=random\n",
    "[server] replica-balance: must be round-robin or least-connections, not ‘random’" },
  { "[server]\nreplica-balance=\n", "[server] replica-balance: must not be empty" },
};

static void
test_server_invalid (void)
{
  for (guint i = 0; i < G_N_ELEMENTS (server_bad); i++)
    {
      g_autoptr (GKeyFile) kf = keyfile_from (server_bad[i].data);
      g_autoptr (ZltServerConfig) config = NULL;
      g_autoptr (GError) error = NULL;

      g_test_message ("case %u", i);
      config = zlt_server_config_new_from_keyfile (kf, &error);
      g_assert_null (config);
      g_assert_error (error, ZLT_ERROR, ZLT_ERROR_INVALID_CONFIG);
      g_test_message ("-> %s", error->message);
      if (strstr (error->message, server_bad[i].needle) == NULL)
        g_error ("case %u: ‘%s’ does not contain ‘%s’", i, error->message, server_bad[i].needle);
    }
}

static const char server_full[] = "# a full server config\n"
                                  "[server]\n"
                                  "listen=[::1]:4000\n"
                                  "public-bind-address=::\n"
                                  "tls-certificate=cert.pem\n"
                                  "tls-key=/etc/zlt/key.pem\n"
                                  "port-range=40000-40100\n"
                                  "max-tunnels=10\n"
                                  "max-services-per-tunnel=4\n"
                                  "heartbeat-interval=5\n"
                                  "heartbeat-timeout=12\n"
                                  "auth-timeout=3\n"
                                  "connect-timeout=4\n"
                                  "resume-grace=0\n"
                                  "replica-balance=least-connections\n"
                                  "allow-legacy-auth=true\n"
                                  "validator=allow-all\n"
                                  "insecure=true\n"
                                  "\n"
                                  "[validator:allow-all]\n"
                                  "note=development only\n"
                                  "\n"
                                  "[agent]\n"
                                  "server=ws://example.com\n";

static void
assert_server_full (ZltServerConfig *config, const char *dir)
{
  g_autofree char *cert = g_build_filename (dir, "cert.pem", NULL);
  GKeyFile *kf = zlt_server_config_get_keyfile (config);
  g_autofree char *note = NULL;
  guint16 min = 0;
  guint16 max = 0;

  g_assert_cmpstr (zlt_server_config_get_listen_address (config), ==, "::1");
  g_assert_cmpuint (zlt_server_config_get_listen_port (config), ==, 4000);
  g_assert_cmpstr (zlt_server_config_get_public_bind_address (config), ==, "::");
  /* relative to the file */
  g_assert_cmpstr (zlt_server_config_get_tls_certificate (config), ==, cert);
  g_assert_cmpstr (zlt_server_config_get_tls_key (config), ==, "/etc/zlt/key.pem");
  g_assert_true (zlt_server_config_get_use_tls (config));
  zlt_server_config_get_port_range (config, &min, &max);
  g_assert_cmpuint (min, ==, 40000);
  g_assert_cmpuint (max, ==, 40100);
  g_assert_cmpuint (zlt_server_config_get_max_tunnels (config), ==, 10);
  g_assert_cmpuint (zlt_server_config_get_max_services_per_tunnel (config), ==, 4);
  g_assert_cmpuint (zlt_server_config_get_heartbeat_interval (config), ==, 5);
  g_assert_cmpuint (zlt_server_config_get_heartbeat_timeout (config), ==, 12);
  g_assert_cmpuint (zlt_server_config_get_auth_timeout (config), ==, 3);
  g_assert_cmpuint (zlt_server_config_get_connect_timeout (config), ==, 4);
  g_assert_cmpuint (zlt_server_config_get_resume_grace (config), ==, 0);
  g_assert_cmpint (zlt_server_config_get_replica_balance (config), ==,
                   ZLT_REPLICA_BALANCE_LEAST_CONNECTIONS);
  g_assert_true (zlt_server_config_get_allow_legacy_auth (config));
  g_assert_cmpstr (zlt_server_config_get_validator (config), ==, "allow-all");
  g_assert_cmpstr (zlt_server_config_get_validator_group (config), ==, "validator:allow-all");
  g_assert_true (zlt_server_config_get_insecure (config));
  note = g_key_file_get_string (kf, "validator:allow-all", "note", NULL);
  g_assert_cmpstr (note, ==, "development only");
}

static void
test_server_roundtrip (void)
{
  g_autoptr (GError) error = NULL;
  g_autofree char *dir = g_dir_make_tmp ("zlt-config-XXXXXX", &error);
  g_autofree char *path = g_build_filename (dir, "zlayer-tunnel.conf", NULL);
  g_autofree char *path2 = g_build_filename (dir, "written.conf", NULL);
  g_autoptr (ZltServerConfig) config = NULL;
  g_autoptr (ZltServerConfig) again = NULL;
  g_autoptr (ZltServerConfig) missing = NULL;
  g_autoptr (GKeyFile) out = NULL;
  g_autofree char *data = NULL;

  g_assert_no_error (error);
  g_assert_true (g_file_set_contents (path, server_full, -1, &error));
  config = zlt_server_config_new_from_file (path, &error);
  g_assert_no_error (error);
  assert_server_full (config, dir);

  out = zlt_server_config_to_keyfile (config);
  g_assert_true (g_key_file_has_group (out, "agent"));
  data = g_key_file_to_data (out, NULL, NULL);
  g_assert_true (g_file_set_contents (path2, data, -1, &error));
  again = zlt_server_config_new_from_file (path2, &error);
  g_assert_no_error (error);
  assert_server_full (again, dir);

  /* the file name prefixes a validation error */
  g_assert_true (g_file_set_contents (path2, "[server]\nmax-tunnels=0\n", -1, &error));
  missing = zlt_server_config_new_from_file (path2, &error);
  g_assert_error (error, ZLT_ERROR, ZLT_ERROR_INVALID_CONFIG);
  g_assert_true (g_str_has_prefix (error->message, path2));
  g_clear_error (&error);
  g_assert_cmpint (g_unlink (path2), ==, 0);
  missing = zlt_server_config_new_from_file (path2, &error);
  g_assert_error (error, ZLT_ERROR, ZLT_ERROR_INVALID_CONFIG);
  g_assert_null (missing);

  remove_dir (dir);
}

/* agent */

static void
test_client_defaults (void)
{
  g_autoptr (ZltClientConfig) config = zlt_client_config_new_default ();

  g_assert_cmpstr (zlt_client_config_get_server_url (config), ==, "ws://127.0.0.1:3679/tunnel/v1");
  g_assert_cmpstr (zlt_client_config_get_server_host (config), ==, "127.0.0.1");
  g_assert_cmpuint (zlt_client_config_get_server_port (config), ==, 3679);
  g_assert_cmpstr (zlt_client_config_get_server_path (config), ==, "/tunnel/v1");
  g_assert_false (zlt_client_config_get_use_tls (config));
  g_assert_null (zlt_client_config_get_token_file (config));
  g_assert_cmpstr (zlt_client_config_get_token_env (config), ==, "ZLT_TOKEN");
  g_assert_null (zlt_client_config_get_tls_ca_file (config));
  g_assert_null (zlt_client_config_get_tls_pinned_sha256 (config));
  g_assert_false (zlt_client_config_get_tls_insecure (config));
  g_assert_false (zlt_client_config_get_legacy_auth (config));
  g_assert_cmpuint (zlt_client_config_get_heartbeat_interval (config), ==, 15);
  g_assert_cmpuint (zlt_client_config_get_heartbeat_timeout (config), ==, 30);
  g_assert_cmpfloat (zlt_client_config_get_backoff_min (config), ==, 1.0);
  g_assert_cmpfloat (zlt_client_config_get_backoff_max (config), ==, 8.0);
  g_assert_cmpfloat (zlt_client_config_get_fatal_retry (config), ==, 60.0);
  g_assert_cmpuint (zlt_client_config_get_standby_connections (config), ==, 8);
  g_assert_cmpuint (zlt_client_config_get_services (config)->len, ==, 0);
}

static void
test_client_server_url (void)
{
  const struct
  {
    const char *url;
    const char *normalised;
    const char *host;
    guint16 port;
    const char *path;
    gboolean tls;
  } cases[] = {
    { "wss://tunnel.example.com", "wss://tunnel.example.com/tunnel/v1", "tunnel.example.com", 443,
      "/tunnel/v1", TRUE },
    { "ws://h:8080/", "ws://h:8080/tunnel/v1", "h", 8080, "/tunnel/v1", FALSE },
    { "WSS://h/custom/path", "wss://h/custom/path", "h", 443, "/custom/path", TRUE },
    { "ws://[::1]:9000", "ws://[::1]:9000/tunnel/v1", "::1", 9000, "/tunnel/v1", FALSE },
  };

  for (guint i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      g_autofree char *data = g_strdup_printf ("[agent]\nserver=%s\ntoken-env=T\n", cases[i].url);
      g_autoptr (GKeyFile) kf = keyfile_from (data);
      g_autoptr (ZltClientConfig) config = NULL;
      g_autoptr (GError) error = NULL;

      config = zlt_client_config_new_from_keyfile (kf, &error);
      g_assert_no_error (error);
      g_assert_cmpstr (zlt_client_config_get_server_url (config), ==, cases[i].normalised);
      g_assert_cmpstr (zlt_client_config_get_server_host (config), ==, cases[i].host);
      g_assert_cmpuint (zlt_client_config_get_server_port (config), ==, cases[i].port);
      g_assert_cmpstr (zlt_client_config_get_server_path (config), ==, cases[i].path);
      g_assert_cmpint (zlt_client_config_get_use_tls (config), ==, cases[i].tls);
    }
}

#define AGENT "[agent]\nserver=wss://example.com\ntoken-env=ZLT_TOKEN\n"

static const BadCase client_bad[] = {
  { "[server]\n", "[agent]: group missing" },
  { "[agent]\ntoken-env=T\n", "[agent] server: required" },
  { "[agent]\nserver=http://example.com\ntoken-env=T\n",
    "[agent] server: scheme must be ws or wss" },
  { "[agent]\nserver=example.com\ntoken-env=T\n", "[agent] server:" },
  { "[agent]\nserver=ws:///tunnel\ntoken-env=T\n", "[agent] server: ‘ws:///tunnel’ has no host" },
  { "[agent]\nserver=wss://user:pw@example.com\ntoken-env=T\n", "[agent] server: credentials" },
  { "[agent]\nserver=wss://example.com/?token=x\ntoken-env=T\n", "[agent] server:" },
  { "[agent]\nserver=wss://example.com\n", "[agent]: set token-file or token-env" },
  { AGENT "token-file=/etc/zlt/token\n",
    "[agent] token-env: set token-file or token-env, not both" },
  { AGENT "token=hunter2\n", "[agent] token: a token never goes in the config" },
  { "[agent]\nserver=wss://e\ntoken-env=1BAD\n", "[agent] token-env:" },
  { "[agent]\nserver=wss://e\ntoken-file=\n", "[agent] token-file: must not be empty" },
  { AGENT "tls-pinned-sha256=abcd\n", "[agent] tls-pinned-sha256: must be the SHA-256 of the "
                                      "server's certificate (DER): 64 hex digits" },
  /* colons only between pairs of digits, as openssl writes them */
  { AGENT
    "tls-pinned-sha256=A:BCD:EF0123456789abcdef0123456789abcdef0123456789abcdef0123456789ab\n",
    "[agent] tls-pinned-sha256:" },
  { AGENT "tls-pinned-sha256=sha1 "
          "Fingerprint=AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45:67:89:AB:CD:EF:01\n",
    "[agent] tls-pinned-sha256:" },
  { AGENT "tls-pinned-sha256=zz00000000000000000000000000000000000000000000000000000000000000\n",
    "[agent] tls-pinned-sha256:" },
  { "[agent]\nserver=ws://e\ntoken-env=T\ntls-ca-file=/ca.pem\n",
    "[agent] tls-ca-file: only applies to a wss:// server" },
  { "[agent]\nserver=ws://e\ntoken-env=T\ntls-insecure=true\n", "[agent] tls-insecure:" },
  { AGENT "tls-insecure=please\n", "[agent] tls-insecure: must be true or false" },
  { AGENT "legacy-auth=1x\n", "[agent] legacy-auth: must be true or false" },
  { AGENT "standby-connections=2000\n", "[agent] standby-connections:" },
  { AGENT "heartbeat-interval=50\n", "[agent] heartbeat-timeout: must be greater than" },
  { AGENT "heartbeat-timeout=0\n", "[agent] heartbeat-timeout:" },
  { AGENT "backoff-min=0\n", "[agent] backoff-min:" },
  { AGENT "backoff-min=fast\n", "[agent] backoff-min:" },
  { AGENT "backoff-max=inf\n", "[agent] backoff-max:" },
  { AGENT "backoff-min=10\nbackoff-max=5\n", "[agent] backoff-max: must not be below backoff-min" },
  { AGENT "retry=1\n", "[agent] retry: unknown key" },
  { AGENT "[service:bad name]\nlocal-port=80\n", "service name ‘bad name’" },
  { AGENT "[service:]\nlocal-port=80\n", "service name ‘’" },
  { AGENT "[service:"
          "a123456789b123456789c123456789d123456789e123456789f123456789g1234"
          "]\nlocal-port=80\n",
    "must be 1 to 64" },
  { AGENT "[service:web]\nprotocol=sctp\nlocal-port=80\n", "[service:web] protocol:" },
  { AGENT "[service:web]\nlocal-host=\nlocal-port=80\n", "[service:web] local-host:" },
  { AGENT "[service:web]\nprotocol=tcp\n", "[service:web] local-port: required" },
  { AGENT "[service:web]\nlocal-port=0\n", "[service:web] local-port:" },
  { AGENT "[service:web]\nlocal-port=65536\n", "[service:web] local-port:" },
  { AGENT "[service:web]\nlocal-port=80\nremote-port=70000\n", "[service:web] remote-port:" },
  { AGENT "[service:web]\nlocal-port=80\nexpose=private\n", "[service:web] expose:" },
  { AGENT "[service:web]\nlocal-port=80\nremote-port=8080\nexpose=internal\n",
    "[service:web] remote-port: an internal service" },
  { AGENT "[service:web]\nlocal-port=80\nport=1\n", "[service:web] port: unknown key" },
};

static void
test_client_invalid (void)
{
  for (guint i = 0; i < G_N_ELEMENTS (client_bad); i++)
    {
      g_autoptr (GKeyFile) kf = keyfile_from (client_bad[i].data);
      g_autoptr (ZltClientConfig) config = NULL;
      g_autoptr (GError) error = NULL;

      g_test_message ("case %u", i);
      config = zlt_client_config_new_from_keyfile (kf, &error);
      g_assert_null (config);
      g_assert_error (error, ZLT_ERROR, ZLT_ERROR_INVALID_CONFIG);
      g_test_message ("-> %s", error->message);
      if (strstr (error->message, client_bad[i].needle) == NULL)
        g_error ("case %u: ‘%s’ does not contain ‘%s’", i, error->message, client_bad[i].needle);
    }
}

static const char client_full[]
    = "[agent]\n"
      "server=wss://tunnel.example.com:8443/zlt\n"
      "token-file=agent.token\n"
      "tls-ca-file=/etc/zlt/ca.pem\n"
      "tls-pinned-sha256=ABCDEF0123456789abcdef0123456789ABCDEF0123456789abcdef0123456789\n"
      "tls-insecure=false\n"
      "legacy-auth=true\n"
      "heartbeat-interval=10\n"
      "heartbeat-timeout=25\n"
      "backoff-min=0.25\n"
      "backoff-max=30.5\n"
      "standby-connections=0\n"
      "\n"
      "[service:web]\n"
      "local-port=8080\n"
      "remote-port=30080\n"
      "\n"
      "[service:dns_1]\n"
      "protocol=udp\n"
      "local-host=10.0.0.53\n"
      "local-port=53\n"
      "\n"
      "[service:ssh]\n"
      "local-port=22\n"
      "expose=internal\n"
      "\n"
      "[node:other]\n"
      "server=wss://other.example.com\n";

static void
assert_client_full (ZltClientConfig *config, const char *dir)
{
  g_autofree char *token_file = g_build_filename (dir, "agent.token", NULL);
  GPtrArray *services = zlt_client_config_get_services (config);
  const ZltServiceConfig *web;
  const ZltServiceConfig *dns;
  const ZltServiceConfig *ssh;

  g_assert_cmpstr (zlt_client_config_get_server_url (config), ==,
                   "wss://tunnel.example.com:8443/zlt");
  g_assert_cmpstr (zlt_client_config_get_server_host (config), ==, "tunnel.example.com");
  g_assert_cmpuint (zlt_client_config_get_server_port (config), ==, 8443);
  g_assert_cmpstr (zlt_client_config_get_server_path (config), ==, "/zlt");
  g_assert_true (zlt_client_config_get_use_tls (config));
  g_assert_cmpstr (zlt_client_config_get_token_file (config), ==, token_file);
  g_assert_null (zlt_client_config_get_token_env (config));
  g_assert_cmpstr (zlt_client_config_get_tls_ca_file (config), ==, "/etc/zlt/ca.pem");
  g_assert_cmpstr (zlt_client_config_get_tls_pinned_sha256 (config), ==,
                   "abcdef0123456789abcdef0123456789abcdef0123456789abcdef0123456789");
  g_assert_false (zlt_client_config_get_tls_insecure (config));
  g_assert_true (zlt_client_config_get_legacy_auth (config));
  g_assert_cmpuint (zlt_client_config_get_heartbeat_interval (config), ==, 10);
  g_assert_cmpuint (zlt_client_config_get_heartbeat_timeout (config), ==, 25);
  g_assert_cmpfloat (zlt_client_config_get_backoff_min (config), ==, 0.25);
  g_assert_cmpfloat (zlt_client_config_get_backoff_max (config), ==, 30.5);
  g_assert_cmpuint (zlt_client_config_get_standby_connections (config), ==, 0);

  g_assert_cmpuint (services->len, ==, 3);
  web = zlt_client_config_lookup_service (config, "web");
  g_assert_nonnull (web);
  g_assert_cmpint (web->protocol, ==, ZLT_PROTOCOL_TCP);
  g_assert_cmpstr (web->local_host, ==, "127.0.0.1");
  g_assert_cmpuint (web->local_port, ==, 8080);
  g_assert_cmpuint (web->remote_port, ==, 30080);
  g_assert_cmpint (web->expose, ==, ZLT_EXPOSE_PUBLIC);
  dns = zlt_client_config_lookup_service (config, "dns_1");
  g_assert_nonnull (dns);
  g_assert_cmpint (dns->protocol, ==, ZLT_PROTOCOL_UDP);
  g_assert_cmpstr (dns->local_host, ==, "10.0.0.53");
  g_assert_cmpuint (dns->local_port, ==, 53);
  g_assert_cmpuint (dns->remote_port, ==, 0);
  ssh = zlt_client_config_lookup_service (config, "ssh");
  g_assert_nonnull (ssh);
  g_assert_cmpint (ssh->expose, ==, ZLT_EXPOSE_INTERNAL);
  g_assert_null (zlt_client_config_lookup_service (config, "WEB"));
}

static void
test_client_roundtrip (void)
{
  g_autoptr (GError) error = NULL;
  g_autofree char *dir = g_dir_make_tmp ("zlt-config-XXXXXX", &error);
  g_autofree char *path = g_build_filename (dir, "agent.conf", NULL);
  g_autofree char *path2 = g_build_filename (dir, "written.conf", NULL);
  g_autoptr (ZltClientConfig) config = NULL;
  g_autoptr (ZltClientConfig) again = NULL;
  g_autoptr (GKeyFile) out = NULL;
  g_autofree char *data = NULL;
  g_autofree char *node_server = NULL;

  g_assert_no_error (error);
  g_assert_true (g_file_set_contents (path, client_full, -1, &error));
  config = zlt_client_config_new_from_file (path, &error);
  g_assert_no_error (error);
  assert_client_full (config, dir);

  out = zlt_client_config_to_keyfile (config);
  node_server = g_key_file_get_string (out, "node:other", "server", NULL);
  g_assert_cmpstr (node_server, ==, "wss://other.example.com");
  data = g_key_file_to_data (out, NULL, NULL);
  g_assert_true (g_file_set_contents (path2, data, -1, &error));
  again = zlt_client_config_new_from_file (path2, &error);
  g_assert_no_error (error);
  assert_client_full (again, dir);

  remove_dir (dir);
}

static void
test_client_services (void)
{
  g_autoptr (ZltClientConfig) config = zlt_client_config_new_default ();
  g_autoptr (ZltServiceConfig) web
      = zlt_service_config_new ("web", ZLT_PROTOCOL_TCP, NULL, 8080, 0, ZLT_EXPOSE_PUBLIC);
  g_autoptr (ZltServiceConfig) web_upper
      = zlt_service_config_new ("Web", ZLT_PROTOCOL_UDP, "::1", 8081, 30001, ZLT_EXPOSE_PUBLIC);
  g_autoptr (ZltServiceConfig) bad_name
      = zlt_service_config_new ("we b", ZLT_PROTOCOL_TCP, NULL, 8080, 0, ZLT_EXPOSE_PUBLIC);
  g_autoptr (ZltServiceConfig) bad_port
      = zlt_service_config_new ("db", ZLT_PROTOCOL_TCP, NULL, 0, 0, ZLT_EXPOSE_PUBLIC);
  g_autoptr (ZltServiceConfig) copy = NULL;
  g_autoptr (GKeyFile) out = NULL;
  g_autoptr (ZltClientConfig) again = NULL;
  g_autoptr (GError) error = NULL;

  g_assert_true (zlt_service_name_is_valid ("a-b_C9"));
  g_assert_false (zlt_service_name_is_valid (""));
  g_assert_false (zlt_service_name_is_valid ("a.b"));
  g_assert_false (zlt_service_name_is_valid ("ü"));

  g_assert_true (zlt_client_config_add_service (config, web, &error));
  g_assert_no_error (error);
  /* names are unique case-sensitively */
  g_assert_false (zlt_client_config_add_service (config, web, &error));
  g_assert_error (error, ZLT_ERROR, ZLT_ERROR_DUPLICATE_NAME);
  g_clear_error (&error);
  g_assert_true (zlt_client_config_add_service (config, web_upper, &error));
  g_assert_no_error (error);
  g_assert_false (zlt_client_config_add_service (config, bad_name, &error));
  g_assert_error (error, ZLT_ERROR, ZLT_ERROR_INVALID_CONFIG);
  g_clear_error (&error);
  g_assert_false (zlt_client_config_add_service (config, bad_port, &error));
  g_assert_error (error, ZLT_ERROR, ZLT_ERROR_INVALID_CONFIG);
  g_clear_error (&error);
  g_assert_cmpuint (zlt_client_config_get_services (config)->len, ==, 2);

  /* the config keeps its own copy */
  g_free (web->local_host);
  web->local_host = g_strdup ("10.9.9.9");
  g_assert_cmpstr (zlt_client_config_lookup_service (config, "web")->local_host, ==, "127.0.0.1");
  copy = zlt_service_config_copy (zlt_client_config_lookup_service (config, "Web"));
  g_assert_cmpuint (copy->remote_port, ==, 30001);

  /* added services are written out */
  out = zlt_client_config_to_keyfile (config);
  again = zlt_client_config_new_from_keyfile (out, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (zlt_client_config_get_services (again)->len, ==, 2);
  g_assert_cmpint (zlt_client_config_lookup_service (again, "Web")->protocol, ==, ZLT_PROTOCOL_UDP);

  g_assert_true (zlt_client_config_remove_service (config, "web"));
  g_assert_false (zlt_client_config_remove_service (config, "web"));
  g_assert_cmpuint (zlt_client_config_get_services (config)->len, ==, 1);
}

static char *
token_from_file (const char *dir, const char *contents, int mode, GError **error)
{
  g_autofree char *token_path = g_build_filename (dir, "token", NULL);
  g_autofree char *data = g_strdup_printf ("[agent]\nserver=ws://h\ntoken-file=%s\n", token_path);
  g_autoptr (GKeyFile) kf = keyfile_from (data);
  g_autoptr (ZltClientConfig) config = zlt_client_config_new_from_keyfile (kf, NULL);
  g_autoptr (GError) error_local = NULL;

  g_assert_nonnull (config);
  g_assert_true (g_file_set_contents (token_path, contents, -1, &error_local));
  g_assert_cmpint (g_chmod (token_path, mode), ==, 0);
  return zlt_client_config_load_token (config, error);
}

static void
test_client_token (void)
{
  g_autoptr (GError) error = NULL;
  g_autofree char *dir = g_dir_make_tmp ("zlt-config-XXXXXX", &error);
  g_autofree char *saved = g_strdup (g_getenv ("ZLT_TEST_TOKEN"));
  g_autoptr (GKeyFile) kf = keyfile_from ("[agent]\nserver=ws://h\ntoken-env=ZLT_TEST_TOKEN\n");
  g_autoptr (ZltClientConfig) env_config = zlt_client_config_new_from_keyfile (kf, NULL);
  g_autofree char *missing_path = g_build_filename (dir, "nope", NULL);
  g_autofree char *missing_data
      = g_strdup_printf ("[agent]\nserver=ws://h\ntoken-file=%s\n", missing_path);
  g_autoptr (GKeyFile) missing_kf = keyfile_from (missing_data);
  g_autoptr (ZltClientConfig) missing = zlt_client_config_new_from_keyfile (missing_kf, NULL);
  char *token;

  g_assert_no_error (error);

  token = token_from_file (dir, "s3cret\n", 0600, &error);
  g_assert_no_error (error);
  g_assert_cmpstr (token, ==, "s3cret");
  g_free (token);

  token = token_from_file (dir, "s3cret\r\n", 0400, &error);
  g_assert_no_error (error);
  g_assert_cmpstr (token, ==, "s3cret");
  g_free (token);

  token = token_from_file (dir, "no-newline", 0600, &error);
  g_assert_no_error (error);
  g_assert_cmpstr (token, ==, "no-newline");
  g_free (token);

  /* readable by others or the group: refused, and the message says what to do */
  token = token_from_file (dir, "s3cret\n", 0644, &error);
  g_assert_null (token);
  g_assert_error (error, ZLT_ERROR, ZLT_ERROR_INSECURE);
  g_assert_nonnull (strstr (error->message, "chmod 600"));
  g_assert_null (strstr (error->message, "s3cret"));
  g_clear_error (&error);
  token = token_from_file (dir, "s3cret\n", 0640, &error);
  g_assert_error (error, ZLT_ERROR, ZLT_ERROR_INSECURE);
  g_clear_error (&error);

  token = token_from_file (dir, "\n", 0600, &error);
  g_assert_error (error, ZLT_ERROR, ZLT_ERROR_INVALID_CONFIG);
  g_clear_error (&error);
  token = token_from_file (dir, "two\nlines\n", 0600, &error);
  g_assert_error (error, ZLT_ERROR, ZLT_ERROR_INVALID_CONFIG);
  g_assert_null (strstr (error->message, "lines"));
  g_clear_error (&error);

  token = zlt_client_config_load_token (missing, &error);
  g_assert_error (error, ZLT_ERROR, ZLT_ERROR_INVALID_CONFIG);
  g_clear_error (&error);

  /* environment */
  g_unsetenv ("ZLT_TEST_TOKEN");
  token = zlt_client_config_load_token (env_config, &error);
  g_assert_error (error, ZLT_ERROR, ZLT_ERROR_INVALID_CONFIG);
  g_assert_nonnull (strstr (error->message, "ZLT_TEST_TOKEN"));
  g_clear_error (&error);
  g_setenv ("ZLT_TEST_TOKEN", "from-env", TRUE);
  token = zlt_client_config_load_token (env_config, &error);
  g_assert_no_error (error);
  g_assert_cmpstr (token, ==, "from-env");
  g_free (token);

  if (saved != NULL)
    g_setenv ("ZLT_TEST_TOKEN", saved, TRUE);
  else
    g_unsetenv ("ZLT_TEST_TOKEN");
  remove_dir (dir);
}

/* The forms a user pastes a pin in: plain hex of either case, openssl's colon form and
 * its whole output line. All mean the same 64 lowercase digits. */
static void
test_client_pin_forms (void)
{
  static const char want[] = "abcdef0123456789abcdef0123456789abcdef0123456789abcdef0123456789";
  const char *const forms[] = {
    "abcdef0123456789abcdef0123456789abcdef0123456789abcdef0123456789",
    "ABCDEF0123456789ABCDEF0123456789ABCDEF0123456789ABCDEF0123456789",
    "AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45:67:"
    "89",
    "sha256 Fingerprint=AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45:67:89:AB:"
    "CD:EF:01:23:45:67:89\n",
    "SHA256 Fingerprint=abcdef0123456789abcdef0123456789abcdef0123456789abcdef0123456789",
  };

  for (guint i = 0; i < G_N_ELEMENTS (forms); i++)
    {
      g_autoptr (GError) error = NULL;
      g_autoptr (GKeyFile) kf = g_key_file_new ();
      g_autoptr (ZltClientConfig) config = NULL;
      g_autofree char *pin = zlt_tls_parse_pin (forms[i], &error);

      g_assert_no_error (error);
      g_assert_cmpstr (pin, ==, want);
      g_key_file_set_string (kf, "agent", "server", "wss://example.com");
      g_key_file_set_string (kf, "agent", "token-env", "T");
      g_key_file_set_string (kf, "agent", "tls-pinned-sha256", forms[i]);
      config = zlt_client_config_new_from_keyfile (kf, &error);
      g_assert_no_error (error);
      g_assert_cmpstr (zlt_client_config_get_tls_pinned_sha256 (config), ==, want);
    }
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/config/server/defaults", test_server_defaults);
  g_test_add_func ("/config/server/invalid", test_server_invalid);
  g_test_add_func ("/config/server/roundtrip", test_server_roundtrip);
  g_test_add_func ("/config/client/defaults", test_client_defaults);
  g_test_add_func ("/config/client/server-url", test_client_server_url);
  g_test_add_func ("/config/client/invalid", test_client_invalid);
  g_test_add_func ("/config/client/pin-forms", test_client_pin_forms);
  g_test_add_func ("/config/client/roundtrip", test_client_roundtrip);
  g_test_add_func ("/config/client/services", test_client_services);
  g_test_add_func ("/config/client/token", test_client_token);
  return g_test_run ();
}
