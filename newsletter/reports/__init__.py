"""What was read, without tracking a reader: issue reports, trends, click maps, the advertiser's Beleg."""
