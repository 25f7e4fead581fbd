/* zlayer-tunnel.h: the embedding API, the one header programs that run a server, an
 * agent, node tunnels or access sessions include (it includes the plugin SDK,
 * zlt-plugin.h) */
#pragma once

#include "zlt-plugin.h"

#include "zlt-message.h"
#include "zlt-port-pool.h"
#include "zlt-quota.h"
#include "zlt-service.h"
#include "zlt-session.h"
#include "zlt-tunnel.h"
#include "zlt-registry.h"
#include "zlt-server-config.h"
#include "zlt-client-config.h"
#include "zlt-server.h"
#include "zlt-agent.h"
#include "zlt-access-manager.h"
#include "zlt-node-tunnel.h"
#include "zlt-node-manager.h"

G_BEGIN_DECLS

ZLT_AVAILABLE_IN_ALL
void zlt_init (void);

G_END_DECLS
