/* zlt-relay-counted.h: the one place a connection's relay is made, counted against the
 * service or access session it belongs to */
#pragma once

#include "zlt-relay.h"

G_BEGIN_DECLS

ZltRelay *zlt_relay_counted_new (GIOStream *a, GIOStream *b, ZltRelayDirection inbound,
                                 GBytes *prefix, gpointer books);
void zlt_relay_counted_start (ZltRelay *relay);
gpointer zlt_relay_counted_get_books (ZltRelay *relay);

G_END_DECLS
