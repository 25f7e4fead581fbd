/* zlt-relay-counted.c: the one place a connection's relay is made, counted against the
 * service or access session it belongs to
 *
 * The server (public client ↔ agent), the agent (data connection ↔ local service) and
 * access sessions (local client ↔ access stream) each relay one connection the same
 * way: the bytes read ahead of the relay (a prefix) go first in the inbound direction,
 * the byte counters feed the books (a #ZltService or a #ZltSession: "in" is the
 * inbound direction), and the books count the connection open from the start to the
 * end of the relay. Each caller keeps its own table of relays and its own ::finished
 * handler; the books' closing count comes after those handlers (G_CONNECT_AFTER), once
 * the caller has let go of the relay. */

#include "config.h"

#include "zlt-relay-counted.h"
#include "zlt-service.h"
#include "zlt-session.h"

typedef struct
{
  GObject *books; /* ZltService or ZltSession */
  ZltRelayDirection inbound;
  gboolean opened;   /* the books count the connection */
  gboolean finished; /* ::finished was emitted (maybe before the start) */
} Books;

static GQuark
books_quark (void)
{
  static GQuark quark = 0;

  if (G_UNLIKELY (quark == 0))
    quark = g_quark_from_static_string ("zlt-relay-counted-books");
  return quark;
}

static void
books_free (Books *books)
{
  g_clear_object (&books->books);
  g_free (books);
}

static void
books_count (guint64 a_to_b, guint64 b_to_a, gpointer user_data)
{
  Books *books = user_data;
  guint64 in = books->inbound == ZLT_RELAY_A_TO_B ? a_to_b : b_to_a;
  guint64 out = books->inbound == ZLT_RELAY_A_TO_B ? b_to_a : a_to_b;

  if (ZLT_IS_SERVICE (books->books))
    zlt_service_add_bytes (ZLT_SERVICE (books->books), in, out); /* the tunnel's too */
  else
    zlt_session_add_bytes (ZLT_SESSION (books->books), in, out);
}

static void
books_finished (ZltRelay *relay, const GError *error, gpointer user_data)
{
  Books *books = user_data;

  books->finished = TRUE;
  if (!books->opened)
    return; /* closed before it started: never counted */
  books->opened = FALSE;
  if (ZLT_IS_SERVICE (books->books))
    zlt_service_connection_closed (ZLT_SERVICE (books->books)); /* and the tunnel's signal */
  else
    zlt_session_connection_closed (ZLT_SESSION (books->books));
}

/**
 * zlt_relay_counted_new:
 * @a: one end
 * @b: the other end
 * @inbound: the direction whose bytes are the books' "in" (toward the service's end
 *   for a service, from the remote service for an access session)
 * @prefix: (nullable): bytes already read from @inbound's source, relayed first
 * @books: the #ZltService or #ZltSession the connection counts against (a reference
 *   is kept until the relay is finalized)
 *
 * Makes a relay of @a and @b whose bytes and whose connection count on @books. Connect
 * to #ZltRelay::finished and set an idle timeout as needed, then start it with
 * zlt_relay_counted_start(): from then until ::finished's handlers have run, @books
 * counts the connection open.
 *
 * Returns: (transfer full): the relay, not started
 */
ZltRelay *
zlt_relay_counted_new (GIOStream *a, GIOStream *b, ZltRelayDirection inbound, GBytes *prefix,
                       gpointer books)
{
  g_autoptr (ZltRelay) relay = NULL;
  Books *data;

  g_return_val_if_fail (G_IS_IO_STREAM (a), NULL);
  g_return_val_if_fail (G_IS_IO_STREAM (b), NULL);
  g_return_val_if_fail (inbound == ZLT_RELAY_A_TO_B || inbound == ZLT_RELAY_B_TO_A, NULL);
  g_return_val_if_fail (ZLT_IS_SERVICE (books) || ZLT_IS_SESSION (books), NULL);

  relay = zlt_relay_new (a, b);
  data = g_new0 (Books, 1);
  data->books = g_object_ref (books);
  data->inbound = inbound;
  /* freed with the relay, after its counter and its handlers are gone */
  g_object_set_qdata_full (G_OBJECT (relay), books_quark (), data, (GDestroyNotify) books_free);
  if (prefix != NULL && g_bytes_get_size (prefix) > 0)
    zlt_relay_set_prefix (relay, inbound, prefix);
  zlt_relay_set_counter_func (relay, books_count, data, NULL);
  g_signal_connect_after (relay, "finished", G_CALLBACK (books_finished), data);
  return g_steal_pointer (&relay);
}

/**
 * zlt_relay_counted_start:
 * @relay: a relay from zlt_relay_counted_new(), not started
 *
 * Counts the connection open on the relay's books, then starts the relay. A relay
 * closed before it started is not counted.
 */
void
zlt_relay_counted_start (ZltRelay *relay)
{
  Books *books;

  g_return_if_fail (ZLT_IS_RELAY (relay));
  books = g_object_get_qdata (G_OBJECT (relay), books_quark ());
  g_return_if_fail (books != NULL && !books->opened);

  if (books->finished) /* closed before it started: nothing to count */
    {
      zlt_relay_start (relay);
      return;
    }
  books->opened = TRUE;
  if (ZLT_IS_SERVICE (books->books))
    zlt_service_connection_opened (ZLT_SERVICE (books->books));
  else
    zlt_session_connection_opened (ZLT_SESSION (books->books));
  zlt_relay_start (relay);
}

/**
 * zlt_relay_counted_get_books:
 * @relay: a relay from zlt_relay_counted_new()
 *
 * Returns: (transfer none): the #ZltService or #ZltSession it counts against
 */
gpointer
zlt_relay_counted_get_books (ZltRelay *relay)
{
  Books *books;

  g_return_val_if_fail (ZLT_IS_RELAY (relay), NULL);
  books = g_object_get_qdata (G_OBJECT (relay), books_quark ());
  g_return_val_if_fail (books != NULL, NULL);
  return books->books;
}
