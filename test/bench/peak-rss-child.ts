/** Child of peak-rss.test.ts: reports its own peak RSS and the kernel's maxRSS. */
import { ownPeakRssBytes } from '../../bench/peak-rss';

process.send!({ own: ownPeakRssBytes(), maxRss: process.resourceUsage().maxRSS * 1024 }, () => process.exit(0));
