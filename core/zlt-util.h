/* zlt-util.h: small helpers GLib 2.74 lacks */
#pragma once

#include <glib-object.h>

G_BEGIN_DECLS

/* The keys of @table (GObjects), each with a reference held, so the caller can act on
 * them while handlers remove entries (g_hash_table_get_keys_as_ptr_array is 2.76). */
GPtrArray *zlt_hash_table_ref_keys (GHashTable *table);

/* The absolute directory of the config file @config_path, where its relative paths start
 * (a relative @config_path is taken from the working directory); NULL for NULL. */
char *zlt_config_directory (const char *config_path);

/* "90", "90s", "30m", "2h", "1d", "1h30m": whole seconds (at most G_MAXUINT). */
gboolean zlt_parse_duration (const char *text, guint *seconds, GError **error);

/* The largest rate (about 9 TB/s): rate × 1 s in µs stays within 64 bits. */
#define ZLT_RATE_MAX (G_MAXUINT64 / G_USEC_PER_SEC / 2)

/* "0" (no limit), "250000", "512k", "4M", "1G": bytes per second, k, M and G powers of
 * 1000, at most ZLT_RATE_MAX ([service:NAME] rate-limit-in and the CLI's
 * --rate-limit-in read it alike). */
gboolean zlt_parse_rate (const char *text, guint64 *rate);

/* A string a peer sent, made safe for a log line: control and format characters,
 * backslashes and bytes that are not UTF-8 escaped as \xNN (so a newline cannot forge a
 * line, nor an escape sequence repaint a terminal, nor a bidi override reorder it);
 * printable text in any script is kept. Cut at @max_len bytes of input with "…"
 * appended. */
char *zlt_log_escape (const char *text, gsize max_len);

/* TRUE for the log domains of this project ("zlt", "zlt-websocket", "zlayer-tunnel"...):
 * --verbose shows our debug lines, not every library's (libsoup's are a flood). */
gboolean zlt_log_domain_is_ours (const char *domain);

/* A bound on how often one kind of log line is written: at most @max_per_window per
 * @window_s seconds. Peers decide how often they fail; they must not decide how much
 * we log. */
typedef struct
{
  guint max_per_window;
  guint window_s;
  gint64 window_start; /* monotonic µs */
  guint n_logged;
  guint n_suppressed;
} ZltLogLimit;

#define ZLT_LOG_LIMIT_INIT(max_per_window, window_s)                                               \
  {                                                                                                \
    (max_per_window), (window_s), 0, 0, 0                                                          \
  }

/* TRUE when the next line may be written; then *suppressed (optional) says how many
 * were held back since the last one written. */
gboolean zlt_log_limit_allow (ZltLogLimit *limit, guint *suppressed);

/**
 * ZltLogEvent:
 *
 * The events an operator searches the journal for. Each is logged with a MESSAGE_ID
 * (`journalctl MESSAGE_ID=…`, listed in the README) and, where they apply, the fields
 * TUNNEL_ID, SERVICE and PEER.
 */
typedef enum
{
  ZLT_LOG_EVENT_TUNNEL_UP,
  ZLT_LOG_EVENT_TUNNEL_DOWN,
  ZLT_LOG_EVENT_AUTH_FAILED,
  ZLT_LOG_EVENT_SERVICE_REGISTERED,
  ZLT_LOG_EVENT_SERVICE_REFUSED,
  ZLT_LOG_EVENT_ACCESS_STARTED,
  ZLT_LOG_EVENT_ACCESS_ENDED,
  ZLT_LOG_EVENT_NODE_STATE,
  ZLT_LOG_EVENT_N
} ZltLogEvent;

/* The journal's MESSAGE_ID of @event: 32 lowercase hex digits, fixed forever. */
const char *zlt_log_event_id (ZltLogEvent event);

/* Logs MESSAGE (printf @format) at @level in @domain with the event's MESSAGE_ID and
 * the fields given (%NULL ones are left out). A failure a tunnel meets at run time (a
 * refused login, a lost connection) is logged with %G_LOG_LEVEL_WARNING: it reaches
 * GLib as a message (GLib's warnings mean bugs, and G_DEBUG=fatal-warnings aborts on
 * them) carrying ZLT_PRIORITY=4, which the daemon's writer gives to the journal as the
 * record's priority (zlt_log_record_priority()). */
void zlt_log_event (const char *domain, GLogLevelFlags level, ZltLogEvent event,
                    const char *tunnel_id, const char *service, const char *peer,
                    const char *format, ...) G_GNUC_PRINTF (7, 8);
/* zlt_log_event() with the field REASON too (%NULL: left out): the machine-readable
 * cause of an auth failure, the protocol's reason code in lowercase ("bad_token",
 * "expired_token", ...) or, on an agent, "server_proof" and "unknown" (a v1 server's
 * refusal carries no code). */
void zlt_log_event_reason (const char *domain, GLogLevelFlags level, ZltLogEvent event,
                           const char *tunnel_id, const char *service, const char *peer,
                           const char *reason, const char *format, ...) G_GNUC_PRINTF (8, 9);

/* The syslog priority of a record: its ZLT_PRIORITY field where it has one, else
 * what GLib's own writers give @level (3 error/critical, 4 warning, 5 message, 6 info,
 * 7 debug). */
int zlt_log_record_priority (GLogLevelFlags level, const GLogField *fields, gsize n_fields);

G_END_DECLS
