/* zlt-standby-keeper.h: the agent's pool of standby data connections, open and
 * parked at the server ahead of need (PROTOCOL-v2.md §8) */
#pragma once

#include "zlt-binding.h"
#include "zlt-control-transport.h"
#include "zlt-crypto.h"

G_BEGIN_DECLS

/**
 * ZltStandbyBoundFunc:
 * @stream: (transfer full): the standby connection, now the data connection of
 *   @binding's public connection
 * @rest: bytes of the public client that arrived behind the binding (maybe empty)
 * @binding: what the server bound it to
 *
 * A parked connection was bound by the server. The keeper has already forgotten it
 * (and opens another); the callee relays it, or resets it.
 */
typedef void (*ZltStandbyBoundFunc) (GIOStream *stream, GBytes *rest, const ZltBinding *binding,
                                     gpointer user_data);

#define ZLT_TYPE_STANDBY_KEEPER (zlt_standby_keeper_get_type ())
G_DECLARE_FINAL_TYPE (ZltStandbyKeeper, zlt_standby_keeper, ZLT, STANDBY_KEEPER, GObject)

/* The pool of one session: @floor connections at least (the agent's wish), growing
 * with bursts up to @max (the server's STANDBY_MAX). */
ZltStandbyKeeper *zlt_standby_keeper_new (ZltControlTransport *control, GUri *url,
                                          const ZltTlsOptions *tls, const ZltUuid *tunnel_id,
                                          const guint8 session_key[ZLT_HASH_SIZE], guint floor,
                                          guint max, ZltStandbyBoundFunc func, gpointer user_data);
/* Starts filling the pool (the agent has something for it to carry). */
void zlt_standby_keeper_start (ZltStandbyKeeper *self);
/* Closes every connection and opens no more; the callback is never called again. */
void zlt_standby_keeper_stop (ZltStandbyKeeper *self);
/* A public connection came the old way (Connect): the pool was empty, let it grow. */
void zlt_standby_keeper_missed (ZltStandbyKeeper *self);

/* connections parked (open, waiting for a binding) and on their way */
guint zlt_standby_keeper_get_n_parked (ZltStandbyKeeper *self);
guint zlt_standby_keeper_get_n_opening (ZltStandbyKeeper *self);
/* how many the pool keeps now, between floor and max */
guint zlt_standby_keeper_get_target (ZltStandbyKeeper *self);

G_END_DECLS
