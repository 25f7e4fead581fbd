/* zlt-bench-reconnect.c: how long a fleet of agents takes to come back after the
 * server was away, and how evenly it comes back.
 *
 *   ZLT_PLUGIN_DIR=_build/plugins _build/tests/bench/zlt-bench-reconnect [--agents 50]
 *       [--outage 60]
 *
 * One server and N agents (one token, one echo service each) on loopback in this
 * process; the server stops for --outage seconds and starts again on the same port.
 * Prints, from the moment it is back: when the first and the last agent were connected
 * again, the median, and the most reconnections that landed in any 100 ms (a herd
 * shows as one big bucket). Bounded: it gives up --outage + 60 s after the stop. */
#include "config.h"

#include <stdio.h>

#include "zlt-test-util.h"

static gint opt_agents = 50;
static gint opt_outage = 60;

static GOptionEntry entries[] = {
  { "agents", 'n', 0, G_OPTION_ARG_INT, &opt_agents, "Agents (default 50, at most 500)", "N" },
  { "outage", 'o', 0, G_OPTION_ARG_INT, &opt_outage,
    "Seconds the server is away (default 60, at most 3600)", "S" },
  { NULL },
};

typedef struct
{
  ZltAgent *agent;
  gint64 back; /* monotonic µs of its first CONNECTED after the return, 0 before */
} Member;

static gint64 returned; /* monotonic µs the server came back */

static void
on_state (ZltAgent *agent, GParamSpec *pspec, gpointer user_data)
{
  Member *m = user_data;

  if (returned != 0 && m->back == 0 && zlt_agent_get_state (agent) == ZLT_TUNNEL_STATE_CONNECTED)
    m->back = g_get_monotonic_time ();
}

static guint
n_connected (GArray *fleet)
{
  guint n = 0;

  for (guint i = 0; i < fleet->len; i++)
    n += zlt_agent_get_state (g_array_index (fleet, Member, i).agent) == ZLT_TUNNEL_STATE_CONNECTED;
  return n;
}

static gint
compare_gint64 (gconstpointer a, gconstpointer b)
{
  gint64 x = *(const gint64 *) a, y = *(const gint64 *) b;
  return x < y ? -1 : x > y;
}

static gboolean
all_back (GArray *fleet)
{
  for (guint i = 0; i < fleet->len; i++)
    if (g_array_index (fleet, Member, i).back == 0)
      return FALSE;
  return TRUE;
}

int
main (int argc, char **argv)
{
  g_autoptr (GOptionContext) context
      = g_option_context_new ("- agents coming back after an outage");
  g_autoptr (GError) error = NULL;
  g_autoptr (GArray) fleet = g_array_new (FALSE, TRUE, sizeof (Member));
  g_autoptr (GArray) times = g_array_new (FALSE, FALSE, sizeof (gint64));
  g_autofree char *listen = NULL;
  ZltTestHarness h;
  guint16 port;
  gint64 stopped, deadline;
  guint buckets[1000] = { 0 }, herd = 0, missing = 0;

  g_option_context_add_main_entries (context, entries, NULL);
  if (!g_option_context_parse (context, &argc, &argv, &error))
    {
      g_printerr ("zlt-bench-reconnect: %s\n", error->message);
      return 2;
    }
  opt_agents = CLAMP (opt_agents, 1, 500);
  opt_outage = CLAMP (opt_outage, 0, 3600);
  zlt_init ();
  zlt_raise_fd_limit ();

  zlt_test_harness_init (&h, "33000-33599");
  /* the defaults an installed agent has: no test-speed back-off */
  g_key_file_remove_key (h.agent_keyfile, "agent", "backoff-min", NULL);
  g_key_file_remove_key (h.agent_keyfile, "agent", "backoff-max", NULL);
  g_key_file_set_integer (h.server_keyfile, "server", "max-tunnels", opt_agents + 16);
  g_key_file_set_integer (h.server_keyfile, "server", "token-max-tunnels", 0);
  zlt_test_harness_start_server (&h);
  port = zlt_server_get_port (h.server);
  for (gint i = 0; i < opt_agents; i++)
    {
      g_autofree char *entry = g_strdup_printf ("echo%d:%u", i, zlt_test_echo_get_port (h.echo));
      const char *services[] = { entry, NULL };
      Member m = { zlt_test_harness_new_agent (&h, h.token, services), 0 };

      g_array_append_val (fleet, m);
    }
  for (guint i = 0; i < fleet->len; i++)
    {
      Member *m = &g_array_index (fleet, Member, i);
      g_signal_connect (m->agent, "notify::state", G_CALLBACK (on_state), m);
      zlt_agent_start (m->agent);
    }
  ZLT_TEST_WAIT_FOR (n_connected (fleet) == fleet->len, 60000);
  printf ("%d agents connected; stopping the server for %d s\n", opt_agents, opt_outage);
  fflush (stdout);

  zlt_test_harness_stop_server (&h);
  stopped = g_get_monotonic_time ();
  ZLT_TEST_WAIT_FOR (g_get_monotonic_time () - stopped >= (gint64) opt_outage * G_USEC_PER_SEC,
                     (guint) opt_outage * 1000 + 5000);
  listen = g_strdup_printf ("127.0.0.1:%u", port);
  g_key_file_set_string (h.server_keyfile, "server", "listen", listen);
  zlt_test_harness_start_server (&h);
  returned = g_get_monotonic_time ();

  deadline = stopped + ((gint64) opt_outage + 60) * G_USEC_PER_SEC;
  ZLT_TEST_WAIT_FOR (all_back (fleet) || g_get_monotonic_time () >= deadline,
                     (guint) (opt_outage + 65) * 1000);
  for (guint i = 0; i < fleet->len; i++)
    {
      gint64 back = g_array_index (fleet, Member, i).back;
      gint64 ms;

      if (back == 0)
        {
          missing++;
          continue;
        }
      ms = (back - returned) / 1000;
      g_array_append_val (times, ms);
      buckets[MIN (ms / 100, (gint64) G_N_ELEMENTS (buckets) - 1)]++;
    }
  for (guint i = 0; i < G_N_ELEMENTS (buckets); i++)
    herd = MAX (herd, buckets[i]);
  g_array_sort (times, compare_gint64);
  if (times->len > 0)
    printf ("back after the server's return: first %" G_GINT64_FORMAT
            " ms, median %" G_GINT64_FORMAT " ms, last %" G_GINT64_FORMAT
            " ms; at most %u in one 100 ms; %u never came back\n",
            g_array_index (times, gint64, 0), g_array_index (times, gint64, times->len / 2),
            g_array_index (times, gint64, times->len - 1), herd, missing);
  else
    printf ("no agent came back within 60 s\n");

  for (guint i = 0; i < fleet->len; i++)
    {
      ZltAgent *agent = g_array_index (fleet, Member, i).agent;
      g_signal_handlers_disconnect_by_data (agent, &g_array_index (fleet, Member, i));
      zlt_agent_stop (agent);
      g_object_unref (agent);
    }
  zlt_test_harness_clear (&h);
  return missing == 0 ? 0 : 1;
}
