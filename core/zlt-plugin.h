/* zlt-plugin.h: the plugin SDK, the one header transport and validator plugins include
 *
 * A plugin is a GModule named libzlt-NAME.so, built against zlayer-tunnel-1.pc, that
 * defines its types and registers them with ZLT_PLUGIN_DEFINE (zlt-plugin-loader.h).
 * Everything a plugin may use is declared in the headers below; the library exports
 * nothing else. */
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
#include "zlt-net.h"
#include "zlt-tls.h"
#include "zlt-accept-loop.h"
#include "zlt-listener.h"
#include "zlt-transport.h"
#include "zlt-channel.h"
#include "zlt-control-listener.h"
#include "zlt-control-transport.h"
#include "zlt-credential.h"
#include "zlt-grant.h"
#include "zlt-validator.h"
#include "zlt-plugin-loader.h"
