package headers

import "testing"

// TestNameExpirationDepth: Core's NameExpirationDepth per network. Testnet
// inherits mainnet's ramp (TestNetConsensus derives from MainNetConsensus);
// regtest overrides it with 30.
func TestNameExpirationDepth(t *testing.T) {
	for _, c := range []struct {
		p      *Params
		height int32
		want   int32
	}{
		{&MainNetParams, 0, 12000},
		{&MainNetParams, 23999, 12000},
		{&MainNetParams, 24000, 12000},
		{&MainNetParams, 30000, 18000},
		{&MainNetParams, 47999, 35999},
		{&MainNetParams, 48000, 36000},
		{&MainNetParams, 600000, 36000},
		{&TestNetParams, 10000, 12000},
		{&TestNetParams, 30000, 18000},
		{&TestNetParams, 48000, 36000},
		{&RegTestParams, 10, 30},
		{&RegTestParams, 30000, 30},
	} {
		if got := c.p.NameExpirationDepthAt(c.height); got != c.want {
			t.Errorf("%s at %d: %d, Core gives %d", c.p.Name, c.height, got, c.want)
		}
	}
}
