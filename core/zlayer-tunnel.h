/* zlayer-tunnel.h: the one header SDK users include */
#pragma once

#include <glib.h>
#include <glib-object.h>
#include <gio/gio.h>

#include "zlt-error.h"
#include "zlt-types.h"
#include "zlt-enum-types.h"
#include "zlt-uuid.h"
#include "zlt-crypto.h"
#include "zlt-message.h"
#include "zlt-port-pool.h"
#include "zlt-service.h"
#include "zlt-session.h"
#include "zlt-tunnel.h"
#include "zlt-registry.h"
#include "zlt-transport.h"
#include "zlt-validator.h"
#include "zlt-plugin-loader.h"
#include "zlt-server-config.h"
#include "zlt-client-config.h"

G_BEGIN_DECLS

void zlt_init (void);

G_END_DECLS
