from newsletter.entry import main

main()
