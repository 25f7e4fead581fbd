/* zlayer-tunnel.h: the one header SDK users include */
#pragma once

#include <glib.h>
#include <glib-object.h>
#include <gio/gio.h>

#include "zlt-version.h"
#include "zlt-error.h"
#include "zlt-types.h"
#include "zlt-enum-types.h"
#include "zlt-uuid.h"
#include "zlt-crypto.h"
#include "zlt-message.h"
#include "zlt-port-pool.h"
#include "zlt-quota.h"
#include "zlt-service.h"
#include "zlt-session.h"
#include "zlt-tunnel.h"
#include "zlt-registry.h"
#include "zlt-listener.h"
#include "zlt-transport.h"
#include "zlt-credential.h"
#include "zlt-grant.h"
#include "zlt-validator.h"
#include "zlt-plugin-loader.h"
#include "zlt-server-config.h"
#include "zlt-client-config.h"
#include "zlt-relay.h"
#include "zlt-channel.h"
#include "zlt-control-listener.h"
#include "zlt-accept-loop.h"
#include "zlt-control-transport.h"
#include "zlt-net.h"
#include "zlt-tls.h"
#include "zlt-source.h"
#include "zlt-backoff.h"
#include "zlt-heartbeat.h"
#include "zlt-server.h"
#include "zlt-agent.h"
#include "zlt-access-manager.h"
#include "zlt-node-tunnel.h"
#include "zlt-node-manager.h"

G_BEGIN_DECLS

ZLT_AVAILABLE_IN_ALL
void zlt_init (void);

G_END_DECLS
